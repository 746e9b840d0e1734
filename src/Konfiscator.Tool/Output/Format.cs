using System.Globalization;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Spectre.Console;

namespace Konfiscator.Tool.Output;

internal static class Format
{
    public static string Count(ulong n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string Bytes(ulong n)
    {
        if (n < 1024) return $"{Count(n)} B";
        double v = Scale(n, out string unit);
        return $"{Count(n)} B ({v.ToString("0.0", CultureInfo.InvariantCulture)} {unit})";
    }

    /// <summary>Bytes in a few characters, for tables: "812 B", "23.9 KiB".</summary>
    public static string BytesShort(ulong n)
    {
        if (n < 1024) return $"{n} B";
        double v = Scale(n, out string unit);
        return $"{v.ToString(v < 10 ? "0.0" : "0", CultureInfo.InvariantCulture)} {unit}";
    }

    /// <summary>n (at least 1024) in the largest binary unit that keeps it at 1 or more.</summary>
    private static double Scale(ulong n, out string unit)
    {
        string[] units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        unit = units[u];
        return v;
    }

    /// <summary>A ratio with three decimals; "–" when it is undefined (NaN).</summary>
    public static string Ratio(double value) =>
        double.IsFinite(value) ? value.ToString("0.000", CultureInfo.InvariantCulture) : "–";

    public static bool IsBytes(Figure figure) => figure.Name.Contains("bytes", StringComparison.Ordinal);

    public static string Value(Figure figure, ulong value) => IsBytes(figure) ? Bytes(value) : Count(value);

    public static string ValueShort(Figure figure, ulong value) => IsBytes(figure) ? BytesShort(value) : Count(value);

    /// <summary>Label of histogram bucket i: "≤ 2^i B", the last one "> 4 GiB".</summary>
    public static string Bucket(int i) =>
        i == StatsLayout.HistogramBuckets - 1 ? "> 4 GiB" : $"≤ {ShortBytes(1UL << i)}";

    public static string ShortBytes(ulong n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int u = 0;
        while (n >= 1024 && n % 1024 == 0 && u < units.Length - 1)
        {
            n /= 1024;
            u++;
        }
        return $"{n} {units[u]}";
    }

    /// <summary>The bucket holding quantile q of a (non-cumulative) histogram, as "≤ X"; "–" if empty.</summary>
    public static string Quantile(ReadOnlySpan<ulong> buckets, double q)
    {
        ulong total = Figures.HistogramTotal(buckets);
        if (total == 0) return "–";
        double rank = q * total;
        ulong seen = 0;
        for (int i = 0; i < buckets.Length; i++)
        {
            seen += buckets[i];
            if (seen >= rank && buckets[i] > 0) return Bucket(i);
        }
        return Bucket(buckets.Length - 1);
    }

    /// <summary>A console that writes to stderr (summaries must not mix into a command's stdout).</summary>
    public static IAnsiConsole ErrorConsole() => Create(Console.Error, Console.IsErrorRedirected);

    public static IAnsiConsole OutputConsole() => Create(Console.Out, Console.IsOutputRedirected);

    /// <summary>Colours and cursor codes only on a terminal (and not with NO_COLOR). The width:
    /// COLUMNS when it is set, else the terminal's, else (a pipe or a file) wide enough that a
    /// table is never wrapped: its rows stay whole lines for grep and diff.</summary>
    private static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = InteractionSupport.No,
        });
        if (Columns() is int columns) console.Profile.Width = columns;
        else if (redirected) console.Profile.Width = UnwrappedWidth;
        return console;
    }

    /// <summary>Width of output that is not a terminal and has no COLUMNS.</summary>
    public const int UnwrappedWidth = 1000;

    private static int? Columns() =>
        int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 20
            ? n
            : null;
}
