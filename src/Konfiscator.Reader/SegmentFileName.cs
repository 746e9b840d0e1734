using System.Globalization;
using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>Names in the stats directory: <c>&lt;pid&gt;.kstats</c> for a process's first image,
/// <c>&lt;pid&gt;.&lt;gen&gt;.kstats</c> for later ones. Every other name is ignored
/// (<c>exporter.pid</c> is the exporter's own claim).</summary>
public static class SegmentFileName
{
    public const string Suffix = StatsSchema.SegmentSuffix;
    public const string ExporterPidFile = StatsSchema.ExporterPidFile;

    public static string Format(int pid, uint generation) =>
        generation == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{pid}{Suffix}")
            : string.Create(CultureInfo.InvariantCulture, $"{pid}.{generation}{Suffix}");

    public static bool TryParse(string name, out int pid, out uint generation)
    {
        pid = 0;
        generation = 0;
        if (!name.EndsWith(Suffix, StringComparison.Ordinal)) return false;
        var stem = name.AsSpan(0, name.Length - Suffix.Length);
        int dot = stem.IndexOf('.');
        var pidText = dot < 0 ? stem : stem[..dot];
        if (!IsDigits(pidText) || !int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out pid) || pid <= 0)
            return false;
        if (dot < 0) return true;
        var genText = stem[(dot + 1)..];
        return IsDigits(genText)
               && uint.TryParse(genText, NumberStyles.None, CultureInfo.InvariantCulture, out generation)
               && generation > 0;
    }

    private static bool IsDigits(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || text.Length > 10) return false;
        foreach (char c in text)
            if (c is < '0' or > '9') return false;
        return true;
    }
}
