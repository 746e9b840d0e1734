using System.Globalization;
using System.Text;
using Konfiscator.Reader;
using Konfiscator.Tool.Output;
using Konfiscator.Tool.Profiling;

namespace Konfiscator.Tool.Views;

/// <summary>The "top sites" lines of <c>konfiscator top</c>: the largest live allocation sites of
/// the process by estimated bytes in use, from its sample tables (issue 11's reader, symbolizer and
/// site grouping). One per watched process: its <see cref="Symbolizer"/> keeps each object's symbol
/// table and every demangled name, so only the first frame pays for reading ELF files and later
/// refreshes only re-read the tables and look addresses up.</summary>
internal sealed class TopSites(string segmentPath, int pid, string command)
{
    public const int Shown = 5;
    private const int Width = 80;
    private readonly Symbolizer _symbolizer = new();

    public string Render()
    {
        var text = new StringBuilder();
        var read = SampleReader.Read(segmentPath, peak: false);
        if (!read.Ok)
        {
            text.AppendLine(Fit(read.Error == SampleReadError.Absent
                ? "allocation sites: not sampled (no sample tables published)"
                : $"allocation sites: cannot read the sample tables ({SampleReader.ReasonLabel(read.Error)})"));
            return text.ToString();
        }
        var table = read.Table!;
        if (!table.SamplingOn && table.Samples.Count == 0)
        {
            text.AppendLine(Fit($"allocation sites: sampling {table.StateText}"));
            return text.ToString();
        }
        var profile = HeapProfile.Build(table, _symbolizer, pid, command, peak: false);
        var sites = profile.Sites().Where(s => s.InUseBytes >= 0.5).Take(Shown).ToList();
        text.AppendLine(Fit($"top allocation sites (bytes in use, estimated from {Format.Count((ulong)table.Samples.Count)} samples, mean {Format.BytesShort(table.MeanBytes)})"));
        if (sites.Count == 0) text.AppendLine("  (no live samples)");
        double total = Math.Max(profile.InUseBytes, 1);
        foreach (var site in sites)
        {
            string figures = string.Create(CultureInfo.InvariantCulture,
                $"  {Format.BytesShort((ulong)site.InUseBytes),10} {100 * site.InUseBytes / total,5:0.0}%  ");
            text.AppendLine(figures + Shorten(site.Site, Width - figures.Length));
        }
        return text.ToString();
    }

    /// <summary>A site name in at most <paramref name="room"/> characters: C++ parameter lists go
    /// first ("f(...)"), then the middle of the name, keeping its start (namespace) and end (function).</summary>
    public static string Shorten(string name, int room)
    {
        name = new string(name.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        if (name.Length <= room) return name;
        int paren = name.IndexOf('(', StringComparison.Ordinal);
        if (paren > 0 && name.EndsWith(')'))
        {
            name = name[..paren] + "(…)";
            if (name.Length <= room) return name;
        }
        int head = (room - 1) / 2, tail = room - 1 - head;
        return name[..head] + "…" + name[^tail..];
    }

    private static string Fit(string line) => line.Length <= Width ? line : line[..(Width - 1)] + "…";
}
