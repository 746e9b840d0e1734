using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>A ratio computed from one set of figures (<c>v(counter)</c> reads one).</summary>
public sealed record RatioFigure(string Name, string Help, Func<Func<int, ulong>, double> Compute)
{
    public string MetricName => Figures.Prefix + Name;
}

/// <summary>One published figure: its metric name (without the <c>konfiscator_</c> prefix), help
/// text, where it comes from in the segment, and how processes of one command add up (a row of
/// <see cref="StatsSchema"/>, Shared/StatsSchema.cs).</summary>
public sealed record Figure(string Name, string Help, int Counter, FigureKind Kind, GroupAggregation Aggregation)
{
    public string MetricName => Figures.Prefix + Name;
}

/// <summary>The catalog of figures the tool serves, derived from the schema (Shared/StatsSchema.cs,
/// the one table of counters, kinds, merge rules and metric names), plus the ratios and families
/// the tool computes itself. docs/metrics.md describes the same list (MetricsDocTests).</summary>
public static class Figures
{
    public const string Prefix = "konfiscator_";

    /// <summary>Every served row of the schema (Shared/StatsSchema.cs), in its order.</summary>
    public static readonly IReadOnlyList<Figure> All =
        Enumerable.Range(0, StatsSchema.Rows).Select(StatsSchema.At).Where(f => f.Name is not null)
            .Select(f => new Figure(f.Name, f.Help, f.Counter, f.Kind, f.Aggregation)).ToArray();

    /// <summary>Ratios derived from the gauges, for live processes (a group's from its summed
    /// gauges): how a heap's free space and mappings relate to what it holds.</summary>
    public static readonly IReadOnlyList<RatioFigure> Ratios =
    [
        new("fragmentation_ratio",
            "1 - largest free block / free bytes: 0 when the free space is one block, near 1 when it is scattered in small pieces (0 with no free bytes).",
            v => v(StatsLayout.FreeBytes) == 0 ? 0 : 1 - Math.Min(1.0, (double)v(StatsLayout.LargestFreeBlock) / v(StatsLayout.FreeBytes))),
        new("mapped_to_in_use_ratio",
            "Bytes mapped from the OS / bytes in use: 1 means every mapped byte is handed out; above 1, the rest is free space, headers and unused mappings (NaN with nothing in use).",
            v => v(StatsLayout.BytesInUse) == 0 ? double.NaN : (double)v(StatsLayout.BytesMapped) / v(StatsLayout.BytesInUse)),
    ];

    public const string RequestSizeName = "request_size_bytes";
    public const string RequestSizeHelp = "Requested sizes of allocation calls, in power-of-two buckets.";
    public const string ProcessesName = "processes";
    public const string ProcessesHelp = "Live processes of this command that publish a stats segment.";
    public const string ExitedName = "exited_processes_total";
    public const string ExitedHelp = "Process images of this command that ended and whose final counts were folded into the group.";
    public const string ReadErrorsName = "exporter_read_errors_total";
    public const string ReadErrorsHelp = "Files in the stats directory the exporter could not read as a segment (each distinct file once), by reason.";
    public const string ScanErrorsName = "exporter_scan_errors_total";
    public const string ScanErrorsHelp = "Collections that could not read the stats directory, by reason: untrusted_directory (a symbolic link, another user's, or open to other users: refused) or unreadable_directory.";

    /// <summary>Each counter index's row of the schema, looked up once.</summary>
    private static readonly FigureSchema[] Schema =
        Enumerable.Range(0, StatsLayout.CountersPerSlot).Select(StatsSchema.Of).ToArray();

    /// <summary>The schema's row for a counter index (histogram buckets included).</summary>
    internal static FigureSchema SchemaOf(int counter) => Schema[counter];

    /// <summary>True for counters that only grow (they are folded into a group when a process ends).</summary>
    public static bool IsMonotonic(int counter) => Schema[counter].Kind == FigureKind.Counter;

    /// <summary>The number of requests a (non-cumulative) histogram counts.</summary>
    public static ulong HistogramTotal(ReadOnlySpan<ulong> buckets)
    {
        ulong n = 0;
        foreach (ulong b in buckets) n = unchecked(n + b);
        return n;
    }

    /// <summary>Upper bound of histogram bucket i (2^i); the last bucket is +Inf.</summary>
    public static double BucketUpperBound(int bucket) =>
        bucket >= StatsLayout.HistogramBuckets - 1 ? double.PositiveInfinity : Math.Pow(2, bucket);

    public static Figure Get(string name) => All.First(f => f.Name == name);
}
