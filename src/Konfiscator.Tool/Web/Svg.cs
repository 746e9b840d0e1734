using System.Globalization;
using System.Net;
using System.Text;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Output;

namespace Konfiscator.Tool.Web;

/// <summary>The web page's charts, drawn on the server as SVG (no script library, nothing to build
/// or download; the page inserts them into itself). Every text is escaped.</summary>
internal static class Svg
{
    private const int Width = 560, Height = 170, Left = 64, Right = 12, Top = 22, Bottom = 22;

    public sealed record Line(string Name, string Color, double[] Values);

    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
    public static string Escape(string text) => WebUtility.HtmlEncode(text);

    /// <summary>Lines over time (x: seconds, newest right). data-last holds the first line's last value.</summary>
    public static string LineChart(string id, string title, double[] times, IReadOnlyList<Line> lines, Func<double, string> label)
    {
        var svg = new StringBuilder();
        double last = lines.Count > 0 && lines[0].Values.Length > 0 ? lines[0].Values[^1] : 0;
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" class=\"chart\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" data-last=\"{F(last)}\" data-points=\"{times.Length}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"14\" class=\"title\">{Escape(title)}</text>");
        double max = Math.Max(1, lines.SelectMany(l => l.Values).DefaultIfEmpty(0).Max());
        double t0 = times.Length > 0 ? times[0] : 0, t1 = times.Length > 0 ? times[^1] : 1;
        if (t1 - t0 < 60) t0 = t1 - 60; // at least a minute wide, so a new process's line starts at the right
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        for (int g = 0; g <= 2; g++)
        {
            double y = Top + plotH * g / 2;
            svg.Append(CultureInfo.InvariantCulture,
                $"<line x1=\"{Left}\" y1=\"{F(y)}\" x2=\"{Width - Right}\" y2=\"{F(y)}\" class=\"grid\"/><text x=\"{Left - 4}\" y=\"{F(y + 4)}\" class=\"axis\" text-anchor=\"end\">{Escape(label(max * (2 - g) / 2))}</text>");
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{Left}\" y=\"{Height - 6}\" class=\"axis\">{Escape(Ago(t1 - t0))}</text><text x=\"{Width - Right}\" y=\"{Height - 6}\" class=\"axis\" text-anchor=\"end\">now</text>");
        int legendX = Left + 200;
        foreach (var line in lines)
        {
            if (line.Values.Length > 0)
            {
                var points = new StringBuilder();
                for (int i = 0; i < line.Values.Length && i < times.Length; i++)
                {
                    double x = Left + plotW * (times[i] - t0) / Math.Max(1e-9, t1 - t0);
                    double y = Top + plotH * (1 - line.Values[i] / max);
                    points.Append(CultureInfo.InvariantCulture, $"{F(x)},{F(y)} ");
                }
                svg.Append(CultureInfo.InvariantCulture,
                    $"<polyline fill=\"none\" stroke=\"{line.Color}\" stroke-width=\"1.5\" points=\"{points.ToString().TrimEnd()}\" data-series=\"{Escape(line.Name)}\"/>");
            }
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{legendX}\" y=\"6\" width=\"10\" height=\"10\" fill=\"{line.Color}\"/><text x=\"{legendX + 14}\" y=\"15\" class=\"axis\">{Escape(line.Name)}</text>");
            legendX += 130;
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Ago(double seconds) => seconds >= 120 ? $"{seconds / 60:0} min ago" : $"{seconds:0} s ago";

    /// <summary>The request-size histogram: one bar per power-of-two bucket that has requests.</summary>
    public static string SizeHistogram(ProcessStats s)
    {
        var buckets = s.Histogram.ToArray();
        int first = Array.FindIndex(buckets, b => b > 0), last = Array.FindLastIndex(buckets, b => b > 0);
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"sizes\" class=\"chart\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" data-requests=\"{Figures.HistogramTotal(buckets)}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"14\" class=\"title\">request sizes ({Escape(Format.Count(Figures.HistogramTotal(buckets)))} requests)</text>");
        if (first < 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"60\" class=\"axis\">no requests yet</text></svg>");
            return svg.ToString();
        }
        double max = buckets.Max();
        int n = last - first + 1;
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom - 10;
        double barW = plotW / n;
        for (int i = first; i <= last; i++)
        {
            double h = plotH * buckets[i] / max;
            double x = Left + barW * (i - first);
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{F(x + 1)}\" y=\"{F(Top + plotH - h)}\" width=\"{F(Math.Max(1, barW - 2))}\" height=\"{F(h)}\" class=\"bar\"><title>{Escape(Format.Bucket(i))}: {buckets[i]}</title></rect>");
            if (n <= 16 || (i - first) % 2 == 0)
                svg.Append(CultureInfo.InvariantCulture,
                    $"<text x=\"{F(x + barW / 2)}\" y=\"{Height - 6}\" class=\"axis\" text-anchor=\"middle\">{Escape(Format.Bucket(i))}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>The heap map as a heat map: one square per cell, redder the more of it is in use,
    /// blue where thread caches hold it, pale where it is free; one row of squares per region.</summary>
    public static string HeapMap(HeapMap? map)
    {
        const int Cell = 7, PerRow = 72, LabelH = 14;
        var svg = new StringBuilder();
        if (map is null || map.Arenas.Count == 0)
        {
            svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"heapmap\" class=\"chart\" viewBox=\"0 0 {Width} 40\" width=\"{Width}\" height=\"40\" data-regions=\"0\">" +
                       $"<text x=\"4\" y=\"24\" class=\"axis\">{(map is null ? "this process publishes no heap map" : "no regions mapped yet")}</text></svg>");
            return svg.ToString();
        }
        var body = new StringBuilder();
        int y = 18;
        int regionCount = 0;
        foreach (var arena in map.Arenas)
        {
            foreach (var region in arena.Regions)
            {
                regionCount++;
                body.Append(CultureInfo.InvariantCulture,
                    $"<g class=\"region\" data-arena=\"{arena.Arena}\" data-start=\"0x{region.Start:x}\" data-bytes=\"{region.Bytes}\" data-cell-bytes=\"{arena.CellBytes}\">");
                body.Append(CultureInfo.InvariantCulture,
                    $"<text x=\"0\" y=\"{y + 10}\" class=\"axis\">arena {arena.Arena} · 0x{region.Start:x} · {Escape(Format.BytesShort(region.Bytes))} · cells of {Escape(Format.BytesShort(arena.CellBytes))}</text>");
                y += LabelH;
                for (int i = 0; i < region.CellCount; i++)
                {
                    var c = arena.Cells[region.FirstCell + i];
                    int x = i % PerRow * (Cell + 1);
                    int cy = y + i / PerRow * (Cell + 1);
                    body.Append(CultureInfo.InvariantCulture,
                        $"<rect x=\"{x}\" y=\"{cy}\" width=\"{Cell}\" height=\"{Cell}\" fill=\"{Color(c)}\"><title>{100 * c.Used / 255}% used, {100 * c.Free / 255}% free, {100 * c.Cached / 255}% cached</title></rect>");
                }
                y += (region.CellCount + PerRow - 1) / PerRow * (Cell + 1) + 4;
                body.Append("</g>");
            }
        }
        int height = y + 16;
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"heapmap\" class=\"chart\" viewBox=\"0 0 {Width} {height}\" width=\"{Width}\" height=\"{height}\" data-regions=\"{regionCount}\">");
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"0\" y=\"12\" class=\"title\">heap map: {Escape(Format.BytesShort(map.UsedBytes))} used, {Escape(Format.BytesShort(map.FreeBytes))} free, {Escape(Format.BytesShort(map.CachedBytes))} in thread caches{Escape(Views.HeapText.Age(map))}</text>");
        svg.Append(body);
        int lx = 0;
        foreach (var (name, cell) in new[] { ("used", new HeapCell(255, 0, 0)), ("half used", new HeapCell(128, 127, 0)), ("free", new HeapCell(0, 255, 0)), ("cached", new HeapCell(0, 0, 255)) })
        {
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{lx}\" y=\"{height - 12}\" width=\"{Cell}\" height=\"{Cell}\" fill=\"{Color(cell)}\"/><text x=\"{lx + 10}\" y=\"{height - 5}\" class=\"axis\">{name}</text>");
            lx += 90;
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>Pale (free) to deep red (used); thread-cache bytes pull towards blue.</summary>
    private static string Color(HeapCell c)
    {
        double used = c.Used / 255.0, cached = c.Cached / 255.0;
        int r = (int)(245 - 45 * used - 180 * cached);
        int g = (int)(245 - 200 * used - 90 * cached);
        int b = (int)(240 - 200 * used + 10 * cached);
        return $"rgb({Math.Clamp(r, 0, 255)},{Math.Clamp(g, 0, 255)},{Math.Clamp(b, 0, 255)})";
    }
}
