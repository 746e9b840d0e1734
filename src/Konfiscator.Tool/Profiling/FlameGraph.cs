using System.Globalization;
using System.Net;
using System.Text;

namespace Konfiscator.Tool.Profiling;

/// <summary>Flame graphs of bytes in use: collapsed stacks (Brendan Gregg's format, one
/// "root;...;leaf bytes" line per stack, for flamegraph.pl, speedscope or inferno) and an SVG drawn
/// here, with no script: the width of a frame is its share of the bytes in use below it.</summary>
internal static class FlameGraph
{
    public static string Collapsed(HeapProfile profile)
    {
        var text = new StringBuilder();
        foreach (var (line, bytes) in Paths(profile).Select(p => (string.Join(';', p.Path.Select(Clean)), p.Bytes)).OrderBy(p => p.Item1, StringComparer.Ordinal))
            text.Append(line).Append(' ').Append(((long)Math.Round(bytes)).ToString(CultureInfo.InvariantCulture)).Append('\n');
        return text.ToString();
    }

    /// <summary>Each stack root first, its bytes in use; stacks with nothing in use are left out.</summary>
    private static IEnumerable<(string[] Path, double Bytes)> Paths(HeapProfile profile) =>
        profile.Stacks.Where(s => s.InUseBytes >= 0.5)
            .Select(s => (s.Frames.Reverse().Select(f => f.Display).ToArray(), s.InUseBytes));

    private static string Clean(string frame) => frame.Replace(';', ':').Replace(' ', '_');

    private sealed class Node
    {
        public readonly Dictionary<string, Node> Children = new(StringComparer.Ordinal);
        public double Bytes;
    }

    public static string Svg(HeapProfile profile)
    {
        const double Width = 1200, RowHeight = 17, Margin = 10, Top = 40;
        var root = new Node();
        foreach (var (path, bytes) in Paths(profile))
        {
            root.Bytes += bytes;
            var node = root;
            foreach (string frame in path)
            {
                if (!node.Children.TryGetValue(frame, out var child)) node.Children[frame] = child = new Node();
                child.Bytes += bytes;
                node = child;
            }
        }
        int depth = Depth(root);
        double height = Top + (depth + 1) * RowHeight + Margin;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" font-family=\"monospace\" font-size=\"12\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"#fdfdf6\"/>\n");
        string title = $"{profile.Command} (pid {profile.Pid}): {(profile.Peak ? "at its peak, " : "")}{Output.Format.BytesShort((ulong)profile.InUseBytes)} in use (sampled, mean {Output.Format.BytesShort(profile.MeanBytes)})";
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Margin}\" y=\"24\" font-size=\"15\">{Escape(title)}</text>\n");
        double scale = root.Bytes > 0 ? (Width - 2 * Margin) / root.Bytes : 0;
        Draw(svg, "all", root, Margin, height - Margin - RowHeight, scale, RowHeight, root.Bytes);
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>Text for the SVG: function and process names are anyone's choice, so markup
    /// characters are escaped and characters XML cannot hold at all (controls) become '?', keeping
    /// the document well-formed.</summary>
    private static string Escape(string text) =>
        WebUtility.HtmlEncode(new string(text.Select(c => c < ' ' || c is '\uFFFE' or '\uFFFF' ? '?' : c).ToArray()));

    private static int Depth(Node node) => node.Children.Count == 0 ? 0 : 1 + node.Children.Values.Max(Depth);

    private static void Draw(StringBuilder svg, string name, Node node, double x, double y, double scale, double rowHeight, double total)
    {
        double width = node.Bytes * scale;
        if (width < 0.3) return;
        uint hash = (uint)name.GetHashCode(StringComparison.Ordinal);
        string color = $"rgb({205 + hash % 50},{(hash >> 8) % 130 + 60},{(hash >> 16) % 55})";
        string label = $"{name} ({Output.Format.BytesShort((ulong)node.Bytes)}, {100 * node.Bytes / Math.Max(total, 1):0.#}%)";
        svg.Append(CultureInfo.InvariantCulture,
            $"<g><title>{Escape(label)}</title><rect x=\"{x:0.##}\" y=\"{y:0.##}\" width=\"{width:0.##}\" height=\"{rowHeight - 1}\" fill=\"{color}\" rx=\"2\"/>");
        int chars = (int)((width - 6) / 7.2);
        if (chars >= 3)
        {
            string text = name.Length <= chars ? name : name[..(chars - 2)] + "..";
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 3:0.##}\" y=\"{y + rowHeight - 5:0.##}\">{Escape(text)}</text>");
        }
        svg.Append("</g>\n");
        double childX = x;
        foreach (var (childName, child) in node.Children.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            Draw(svg, childName, child, childX, y - rowHeight, scale, rowHeight, total);
            childX += child.Bytes * scale;
        }
    }
}
