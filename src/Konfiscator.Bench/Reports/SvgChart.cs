using System.Globalization;
using System.Security;
using System.Text;

namespace Konfiscator.Bench.Reports;

/// <summary>The results as an SVG chart: two grouped bar charts on a log₂ scale, one group per
/// workload (and one for the geometric mean), one bar per allocator, each bar drawn from glibc's
/// line (1×) up when slower or bigger, down when faster or smaller. Top: wall time; bottom: peak
/// RSS. Failed runs show as ✕; allocators that are not installed are named in the legend.
/// Hand-written SVG 1.1 with no scripts or external references; each bar carries a &lt;title&gt;
/// tooltip with the exact figures.</summary>
public static class SvgChart
{
    private const double Width = 1120;
    private const double Left = 70, Right = 20;
    private const double TimePanelHeight = 340, RssPanelHeight = 240;
    private const string Font = "DejaVu Sans, Helvetica, Arial, sans-serif";

    /// <summary>Bar colours by allocator; konfiscator stands out, the others are distinct and calmer.</summary>
    private static readonly Dictionary<string, string> Colors = new()
    {
        ["konfiscator"] = "#d62728",
        ["konfiscator-nostats"] = "#f4a3a3",
        ["jemalloc"] = "#1f77b4",
        ["mimalloc"] = "#2ca02c",
        ["tcmalloc"] = "#ff7f0e",
    };

    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>The chart as an SVG document.</summary>
    public static string Write(BenchResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var bars = results.Allocators.Where(a => !a.IsBaseline && a.Available).ToList();
        var sb = new StringBuilder();
        double timeTop = 110;
        double timeBottom = timeTop + TimePanelHeight;
        double rssTop = timeBottom + 110;
        double rssBottom = rssTop + RssPanelHeight;
        double height = rssBottom + 75;

        sb.Append(C, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" viewBox=\"0 0 {Width} {height}\" ");
        sb.Append(C, $"font-family=\"{Font}\" font-size=\"12\">\n");
        sb.Append(C, $"<rect x=\"0\" y=\"0\" width=\"{Width}\" height=\"{height}\" fill=\"#ffffff\"/>\n");

        var env = results.Environment;
        Text(sb, Left, 28, "Allocator benchmark: time and memory relative to glibc", size: 19, weight: "bold");
        string sub = string.Create(C,
            $"{env.Cpu}, {env.Cores} cores · {(env.Quick ? "QUICK MODE (not a measurement)" : "normal mode")} · " +
            $"median of {env.Rounds} interleaved round{(env.Rounds == 1 ? "" : "s")} · {env.StartedAt:yyyy-MM-dd}");
        string? build = results.Allocators.FirstOrDefault(a => a.Name == AllocatorCatalog.Konfiscator && a.Available)?.Version;
        if (build is not null) sub += " · konfiscator " + build.Split(',')[0];
        Text(sb, Left, 48, sub, size: 12, fill: "#555555");

        // Legend: glibc's line, then one swatch per allocator (absent ones named, greyed).
        double lx = Left;
        const double ly = 74;
        sb.Append(C, $"<line x1=\"{lx}\" y1=\"{ly - 4}\" x2=\"{lx + 22}\" y2=\"{ly - 4}\" stroke=\"#222222\" stroke-width=\"2\"/>\n");
        Text(sb, lx + 28, ly, "glibc = 1× (baseline)");
        lx += 28 + 150;
        foreach (var a in results.Allocators.Where(a => !a.IsBaseline))
        {
            string color = a.Available ? ColorOf(bars, a.Name) : "#cccccc";
            string label = a.Available ? a.Name : a.Name + " (not installed)";
            sb.Append(C, $"<rect x=\"{lx}\" y=\"{ly - 11}\" width=\"14\" height=\"14\" fill=\"{color}\"/>\n");
            Text(sb, lx + 20, ly, label, fill: a.Available ? "#222222" : "#999999");
            lx += 20 + label.Length * 7.2 + 22;
        }

        var timeValues = Values(results, bars, c => c.TimeRatio, s => s.TimeRatioGeometricMean);
        var rssValues = Values(results, bars, c => c.RssRatio, s => s.RssRatioGeometricMean);
        Panel(sb, bars, timeValues, timeTop, timeBottom,
            "Wall time ÷ glibc's (log scale) — below the line is faster", "geometric mean");
        Panel(sb, bars, rssValues, rssTop, rssBottom,
            "Peak RSS ÷ glibc's (log scale) — below the line uses less memory", "geometric mean");
        string footer = "Each bar: the allocator's median divided by glibc's median for the same workload; geometric mean over the workloads at the right.";
        if (results.HasFailures)
            footer += " ✕ = failed runs (crash, wrong output or timeout; pale bar: some runs failed): see the report.";
        Text(sb, Left, height - 18, footer, size: 11, fill: "#666666");
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>Per group (workloads, then the mean), per bar allocator: the ratio, or null (failed / missing).</summary>
    private static List<(string Label, List<(AllocatorInfo Allocator, double? Ratio, CellResult? Cell)> Bars)> Values(
        BenchResults results, List<AllocatorInfo> bars, Func<CellResult, double?> cellRatio, Func<AllocatorSummary, double?> mean)
    {
        var groups = new List<(string, List<(AllocatorInfo, double?, CellResult?)>)>();
        foreach (var w in results.Workloads)
        {
            var list = new List<(AllocatorInfo, double?, CellResult?)>();
            foreach (var a in bars)
            {
                var c = results.Cell(w.Id, a.Name);
                list.Add((a, c is null ? null : cellRatio(c), c));
            }
            groups.Add((w.Title, list));
        }
        var means = bars.Select(a => (a, results.Summary(a.Name) is { } s ? mean(s) : null, (CellResult?)null)).ToList();
        groups.Add(("geometric mean", means));
        return groups;
    }

    private static void Panel(StringBuilder sb, List<AllocatorInfo> bars,
        List<(string Label, List<(AllocatorInfo Allocator, double? Ratio, CellResult? Cell)> Bars)> groups,
        double top, double bottom, string title, string meanLabel)
    {
        double plotLeft = Left, plotRight = Width - Right;
        Text(sb, plotLeft, top - 14, title, size: 14, weight: "bold");

        // Scale: whole powers of two around every value and 1×, at least 0.5×..2×.
        var all = groups.SelectMany(g => g.Bars).Select(b => b.Ratio).OfType<double>().Where(v => v > 0).ToList();
        double lo = Math.Min(-1, Math.Floor(Math.Log2(all.Count > 0 ? Math.Min(1, all.Min()) / 1.15 : 0.5)));
        double hi = Math.Max(1, Math.Ceiling(Math.Log2(all.Count > 0 ? Math.Max(1, all.Max()) * 1.15 : 2)));
        // Room at both ends for the value labels beyond the longest bars.
        const double pad = 34;
        double Y(double ratio) => bottom - pad - (Math.Log2(ratio) - lo) / (hi - lo) * (bottom - top - 2 * pad);

        sb.Append(C, $"<rect x=\"{plotLeft}\" y=\"{top}\" width=\"{plotRight - plotLeft}\" height=\"{bottom - top}\" fill=\"#fafafa\" stroke=\"#dddddd\"/>\n");
        int step = hi - lo > 8 ? 2 : 1;
        for (double e = lo; e <= hi; e += step)
        {
            double y = Y(Math.Pow(2, e));
            if (e != 0)
                sb.Append(C, $"<line x1=\"{plotLeft}\" y1=\"{R(y)}\" x2=\"{plotRight}\" y2=\"{R(y)}\" stroke=\"#e3e3e3\"/>\n");
            Text(sb, plotLeft - 6, y + 4, RatioLabel(Math.Pow(2, e)), size: 11, anchor: "end", fill: "#555555");
        }

        int n = groups.Count;
        double groupWidth = (plotRight - plotLeft) / n;
        int k = Math.Max(1, bars.Count);
        double barWidth = Math.Min(24, groupWidth * 0.8 / k);
        double y1 = Y(1);
        for (int g = 0; g < n; g++)
        {
            double gx = plotLeft + g * groupWidth;
            bool isMean = g == n - 1;
            if (isMean)
                sb.Append(C, $"<line x1=\"{R(gx)}\" y1=\"{top}\" x2=\"{R(gx)}\" y2=\"{bottom}\" stroke=\"#bbbbbb\" stroke-dasharray=\"4 3\"/>\n");
            double start = gx + (groupWidth - barWidth * k) / 2;
            var (label, values) = groups[g];
            for (int i = 0; i < values.Count; i++)
            {
                var (a, ratio, cell) = values[i];
                double x = start + i * barWidth;
                string color = ColorOf(bars, a.Name);
                if (ratio is double r && r > 0)
                {
                    double yv = Y(r);
                    double yTop = Math.Min(yv, y1), h = Math.Max(1, Math.Abs(yv - y1));
                    string tip = isMean ? $"{a.Name}: geometric mean {Format.Ratio(r)}" : Tooltip(a, label, r, cell);
                    sb.Append(C, $"<rect x=\"{R(x + 1)}\" y=\"{R(yTop)}\" width=\"{R(barWidth - 2)}\" height=\"{R(h)}\" fill=\"{color}\"");
                    if (cell is { Status: CellStatus.Failed }) sb.Append(" fill-opacity=\"0.45\"");
                    sb.Append("><title>").Append(SecurityElement.Escape(tip)).Append("</title></rect>\n");
                    // The value, beyond the end of the bar, turned to fit narrow bars.
                    double cx = x + barWidth / 2;
                    double ty = r >= 1 ? yv - 4 : yv + 4;
                    string anchor = r >= 1 ? "start" : "end";
                    sb.Append(C, $"<text x=\"{R(cx + 3.5)}\" y=\"{R(ty)}\" font-size=\"{(barWidth >= 14 ? 10 : 8.5)}\" fill=\"#333333\" ");
                    sb.Append(C, $"text-anchor=\"{anchor}\" transform=\"rotate(-90 {R(cx + 3.5)} {R(ty)})\">{ShortRatio(r)}</text>\n");
                    if (cell is { Status: CellStatus.Failed }) Cross(sb, cx, yv + (r >= 1 ? -2 : 2), color);
                }
                else if (!isMean && cell is { Status: CellStatus.Failed })
                {
                    Cross(sb, x + barWidth / 2, y1, color);
                }
            }
            // Workload label, in up to two lines.
            double lxc = gx + groupWidth / 2;
            var lines = Wrap(isMean ? meanLabel : label, isMean ? 10 : 15);
            for (int l = 0; l < lines.Count; l++)
                Text(sb, lxc, bottom + 16 + l * 14, lines[l], size: 11.5, anchor: "middle",
                    weight: isMean ? "bold" : "normal");
        }
        sb.Append(C, $"<line x1=\"{plotLeft}\" y1=\"{R(y1)}\" x2=\"{plotRight}\" y2=\"{R(y1)}\" stroke=\"#222222\" stroke-width=\"1.5\"/>\n");
    }

    private static string Tooltip(AllocatorInfo a, string workload, double ratio, CellResult? cell)
    {
        var sb = new StringBuilder();
        sb.Append(C, $"{workload}, {a.Name}: {Format.Ratio(ratio)} glibc");
        if (cell?.MedianWallSeconds is double s) sb.Append(C, $"; median {Format.Seconds(s)}");
        if (cell?.MedianPeakRssBytes is long b) sb.Append(C, $", peak RSS {Format.Bytes(b)}");
        if (cell is { Status: CellStatus.Failed }) sb.Append(C, $"; {cell.Note}");
        return sb.ToString();
    }

    private static void Cross(StringBuilder sb, double x, double y, string color)
    {
        const double d = 5;
        sb.Append(C, $"<path d=\"M{R(x - d)} {R(y - d)} L{R(x + d)} {R(y + d)} M{R(x - d)} {R(y + d)} L{R(x + d)} {R(y - d)}\" ");
        sb.Append(C, $"stroke=\"{color}\" stroke-width=\"2.5\" fill=\"none\"><title>failed</title></path>\n");
    }

    private static List<string> Wrap(string text, int width)
    {
        if (text.Length <= width) return [text];
        int cut = text.LastIndexOf(' ', Math.Min(width, text.Length - 1));
        if (cut <= 0) return [text];
        return [text[..cut], text[(cut + 1)..]];
    }

    private static string RatioLabel(double v) =>
        v >= 1 ? v.ToString("0", C) + "×" : v.ToString("0.####", C) + "×";

    private static string ShortRatio(double v) =>
        v >= 10 ? v.ToString("0", C) + "×" : v.ToString("0.00", C) + "×";

    /// <summary>Colours, in turn, for the bars of allocators without one of their own above (the
    /// sampling variants, libraries the user named), so that two of them never look alike.</summary>
    private static readonly string[] Palette = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

    private static string ColorOf(List<AllocatorInfo> bars, string allocator)
    {
        if (Colors.TryGetValue(allocator, out string? c)) return c;
        int turn = bars.Where(a => !Colors.ContainsKey(a.Name)).Select(a => a.Name).ToList().IndexOf(allocator);
        return Palette[Math.Max(turn, 0) % Palette.Length];
    }

    private static string R(double v) => Math.Round(v, 1).ToString(C);

    private static void Text(StringBuilder sb, double x, double y, string text, double size = 12, string anchor = "start",
        string weight = "normal", string fill = "#222222")
    {
        sb.Append(C, $"<text x=\"{R(x)}\" y=\"{R(y)}\" font-size=\"{size}\" text-anchor=\"{anchor}\"");
        if (weight != "normal") sb.Append(C, $" font-weight=\"{weight}\"");
        sb.Append(C, $" fill=\"{fill}\">").Append(SecurityElement.Escape(text)).Append("</text>\n");
    }
}
