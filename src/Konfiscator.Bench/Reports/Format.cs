using System.Globalization;

namespace Konfiscator.Bench.Reports;

/// <summary>Number formatting shared by the writers (invariant culture, three significant digits).</summary>
internal static class Format
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static string Seconds(double s) =>
        s >= 10 ? (s).ToString("0.0", C) + " s"
        : s >= 1 ? s.ToString("0.00", C) + " s"
        : s >= 0.1 ? (s * 1000).ToString("0", C) + " ms"
        : s >= 0.01 ? (s * 1000).ToString("0.0", C) + " ms"
        : (s * 1000).ToString("0.00", C) + " ms";

    public static string Bytes(double b) =>
        b >= 1 << 30 ? (b / (1 << 30)).ToString("0.00", C) + " GiB"
        : b >= 100 << 20 ? (b / (1 << 20)).ToString("0", C) + " MiB"
        : b >= 1 << 20 ? (b / (1 << 20)).ToString("0.0", C) + " MiB"
        : (b / 1024).ToString("0", C) + " KiB";

    public static string Ratio(double r) =>
        r >= 100 ? r.ToString("0", C) + "×" : r >= 10 ? r.ToString("0.0", C) + "×" : r.ToString("0.00", C) + "×";

    public static string Plain(double r) => r.ToString("0.00", C);

    public static string Percent(double ratio) => ((ratio - 1) * 100).ToString("+0.0;-0.0;0.0", C) + "%";

    public static string Duration(TimeSpan t) =>
        t.TotalMinutes >= 1
            ? string.Create(C, $"{(int)t.TotalMinutes} min {t.Seconds} s")
            : t.TotalSeconds.ToString("0.0", C) + " s";
}
