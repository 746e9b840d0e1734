using Konfiscator.Stats;

namespace Konfiscator.Reader;

public enum FigureKind
{
    /// <summary>Only grows while a process lives; a group's value adds the final values of its exited processes.</summary>
    Counter,
    /// <summary>A level now; a group's value covers its live processes only.</summary>
    Gauge,
}

public enum GroupAggregation
{
    Sum,
    Max,
}

/// <summary>A ratio computed from one set of figures (<c>v(counter)</c> reads one).</summary>
public sealed record RatioFigure(string Name, string Help, Func<Func<int, ulong>, double> Compute)
{
    public string MetricName => Figures.Prefix + Name;
}

/// <summary>One published figure: its metric name (without the <c>konfiscator_</c> prefix), help
/// text, where it comes from in the segment, and how processes of one command add up.</summary>
public sealed record Figure(string Name, string Help, int Counter, FigureKind Kind, GroupAggregation Aggregation = GroupAggregation.Sum)
{
    public string MetricName => Figures.Prefix + Name;
}

/// <summary>The catalog of figures: the single place that maps segment counters to metric names.
/// docs/metrics.md describes the same list.</summary>
public static class Figures
{
    public const string Prefix = "konfiscator_";

    public static readonly IReadOnlyList<Figure> All =
    [
        // The seed's four counters keep their names.
        new("malloc_total", "Calls of malloc().", StatsLayout.MallocCalls, FigureKind.Counter),
        new("free_total", "Calls of free() and cfree(), NULL pointers included.", StatsLayout.FreeCalls, FigureKind.Counter),
        new("mmap_total", "mmap() and mremap() calls that mapped memory from the OS.", StatsLayout.MmapCalls, FigureKind.Counter),
        new("defrag_total", "Coalesces: free blocks merged with a free neighbour when freed (the seed's name; nothing is moved).", StatsLayout.Coalesces, FigureKind.Counter),
        // The other entry points.
        new("calloc_total", "Calls of calloc().", StatsLayout.CallocCalls, FigureKind.Counter),
        new("realloc_total", "Calls of realloc().", StatsLayout.ReallocCalls, FigureKind.Counter),
        new("reallocarray_total", "Calls of reallocarray().", StatsLayout.ReallocarrayCalls, FigureKind.Counter),
        new("memalign_total", "Calls of memalign().", StatsLayout.MemalignCalls, FigureKind.Counter),
        new("posix_memalign_total", "Calls of posix_memalign().", StatsLayout.PosixMemalignCalls, FigureKind.Counter),
        new("aligned_alloc_total", "Calls of aligned_alloc().", StatsLayout.AlignedAllocCalls, FigureKind.Counter),
        new("valloc_total", "Calls of valloc().", StatsLayout.VallocCalls, FigureKind.Counter),
        new("pvalloc_total", "Calls of pvalloc().", StatsLayout.PvallocCalls, FigureKind.Counter),
        new("malloc_usable_size_total", "Calls of malloc_usable_size().", StatsLayout.UsableSizeCalls, FigureKind.Counter),
        new("cfree_total", "Calls of cfree() (also counted in konfiscator_free_total).", StatsLayout.CfreeCalls, FigureKind.Counter),
        new("munmap_total", "munmap() calls that returned memory to the OS.", StatsLayout.MunmapCalls, FigureKind.Counter),
        new("failed_allocations_total", "Allocation calls that failed with ENOMEM.", StatsLayout.FailedAllocations, FigureKind.Counter),
        new("allocated_bytes_total", "Usable bytes handed out by allocation calls.", StatsLayout.BytesAllocated, FigureKind.Counter),
        new("freed_bytes_total", "Usable bytes given back by free and realloc.", StatsLayout.BytesFreed, FigureKind.Counter),
        // Levels.
        new("in_use_bytes", "Usable bytes allocated and not yet freed (live processes).", StatsLayout.BytesInUse, FigureKind.Gauge),
        new("peak_in_use_bytes", "Highest bytes in use of a process since it started; for a group, the highest among its live processes.", StatsLayout.PeakBytesInUse, FigureKind.Gauge, GroupAggregation.Max),
        new("mapped_bytes", "Bytes currently mapped from the OS (live processes).", StatsLayout.BytesMapped, FigureKind.Gauge),
        new("free_bytes", "Bytes in free blocks of the heap's regions (live processes).", StatsLayout.FreeBytes, FigureKind.Gauge),
        new("free_blocks", "Free blocks in the heap's regions (live processes).", StatsLayout.FreeBlocks, FigureKind.Gauge),
        new("cached_bytes", "Bytes of blocks held by thread caches, free to the program but not to the heap (live processes).", StatsLayout.CachedBytes, FigureKind.Gauge),
        new("cache_refill_blocks_total", "Blocks the thread caches took from the heap.", StatsLayout.CacheRefillBlocks, FigureKind.Counter),
        new("cache_return_blocks_total", "Blocks the thread caches gave back to the heap.", StatsLayout.CacheReturnBlocks, FigureKind.Counter),
        new("largest_free_block_bytes", "Size of the largest free block; for a group, the largest among its live processes.", StatsLayout.LargestFreeBlock, FigureKind.Gauge, GroupAggregation.Max),
    ];

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

    /// <summary>Counter indices whose value lives in the process slot (0) rather than in arena slots.</summary>
    public static bool IsProcessCounter(int counter) => counter is >= StatsLayout.MmapCalls and <= StatsLayout.ProcessBytesInUse;

    /// <summary>True for counters that only grow (they are folded into a group when a process ends).</summary>
    public static bool IsMonotonic(int counter) => counter switch
    {
        StatsLayout.BytesInUse or StatsLayout.FreeBytes or StatsLayout.FreeBlocks or StatsLayout.LargestFreeBlock or StatsLayout.CachedBytes
            or StatsLayout.BytesMapped or StatsLayout.PeakBytesInUse or StatsLayout.ProcessBytesInUse => false,
        _ => true,
    };

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
