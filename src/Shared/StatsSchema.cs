// What every counter of a stats slot means: ONE table (the names both sides spell, file names
// and settings, are the other half of this class: StatsSchema.Names.cs).
//
// StatsLayout.cs says where a counter is (its index in a slot); this file says what it is:
//   - its kind: a counter only grows (a fork child starts it at zero; a group of processes adds
//     the final values of its ended processes), a gauge is a level now (a fork child keeps the
//     heap it inherited, so its gauges are kept; a group covers live processes only);
//   - its scope: kept in every arena/thread slot, or process-wide in slot 0 only;
//   - how a reader merges the slots, and how the exporter merges the processes of a group;
//   - the metric name and help text it is served under (none for internal figures).
// The writer in the library (fork: which values to keep) and the reader in the tool (merging
// slots, folding ended processes, metric families, docs/metrics.md's test) all derive from it.
//
// Compiled into both sides, like StatsLayout.cs: the library has no runtime and no GC heap, so
// the table is a switch over positions (code and read-only data, no managed array), and every
// name is a const string.

#nullable disable // compiled into the library too, which has no nullable attributes

namespace Konfiscator.Stats
{
    /// <summary>What a figure measures over time.</summary>
    public enum FigureKind : byte
    {
        /// <summary>Only grows while a process lives; a group's value adds the final values of its exited processes.</summary>
        Counter,
        /// <summary>A level now; a group's value covers its live processes only.</summary>
        Gauge,
    }

    /// <summary>Which slots of a segment hold a figure.</summary>
    public enum FigureScope : byte
    {
        /// <summary>Every slot but slot 0 holds a part (arenas, the shared slot, threads).</summary>
        Slots,
        /// <summary>Slot 0 alone, written with atomic instructions by every arena ([P] in StatsLayout).</summary>
        Process,
    }

    /// <summary>How a reader merges the slots of one process into one value.</summary>
    public enum SlotMerge : byte
    {
        /// <summary>The wrapping sum over the slots.</summary>
        Sum,
        /// <summary>The wrapping sum, read as a signed number, a torn negative clamped at 0: a thread
        /// may free what another allocated, so its own slot can go "negative".</summary>
        SignedSum,
        /// <summary>The largest value among the slots.</summary>
        Max,
        /// <summary>Slot 0's value (process-wide figures).</summary>
        ProcessSlot,
    }

    /// <summary>How the processes of one command group add up.</summary>
    public enum GroupAggregation : byte
    {
        Sum,
        Max,
    }

    /// <summary>One row of the schema: a counter index of a slot and what it is.</summary>
    internal readonly struct FigureSchema
    {
        public readonly int Counter;
        public readonly FigureKind Kind;
        public readonly FigureScope Scope;
        public readonly SlotMerge Merge;
        public readonly GroupAggregation Aggregation;
        /// <summary>Metric name without the "konfiscator_" prefix; null for a figure that is not served on its own.</summary>
        public readonly string Name;
        public readonly string Help;

        public FigureSchema(int counter, FigureKind kind, FigureScope scope, SlotMerge merge, GroupAggregation aggregation,
                            string name, string help)
        {
            Counter = counter;
            Kind = kind;
            Scope = scope;
            Merge = merge;
            Aggregation = aggregation;
            Name = name;
            Help = help;
        }
    }

    internal static partial class StatsSchema
    {
        /// <summary>Rows of <see cref="At"/>; every counter index below <see cref="StatsLayout.HistogramFirst"/>
        /// that is used has exactly one row. Histogram buckets (and unused indices) are counters
        /// summed over the slots (<see cref="Of"/>).</summary>
        public const int Rows = 29;

        /// <summary>Row <paramref name="row"/> (0 ≤ row &lt; <see cref="Rows"/>), in the order figures are shown.</summary>
        public static FigureSchema At(int row)
        {
            const FigureKind C = FigureKind.Counter, G = FigureKind.Gauge;
            const FigureScope S = FigureScope.Slots, P = FigureScope.Process;
            const GroupAggregation Add = GroupAggregation.Sum, Largest = GroupAggregation.Max;
            return row switch
            {
                // The seed's four counters keep their names.
                0 => new(StatsLayout.MallocCalls, C, S, SlotMerge.Sum, Add, "malloc_total", "Calls of malloc()."),
                1 => new(StatsLayout.FreeCalls, C, S, SlotMerge.Sum, Add, "free_total", "Calls of free() and cfree(), NULL pointers included."),
                2 => new(StatsLayout.MmapCalls, C, P, SlotMerge.ProcessSlot, Add, "mmap_total", "mmap() and mremap() calls that mapped memory from the OS."),
                3 => new(StatsLayout.Coalesces, C, S, SlotMerge.Sum, Add, "defrag_total", "Coalesces: free blocks merged with a free neighbour when freed (the seed's name; nothing is moved)."),
                // The other entry points.
                4 => new(StatsLayout.CallocCalls, C, S, SlotMerge.Sum, Add, "calloc_total", "Calls of calloc()."),
                5 => new(StatsLayout.ReallocCalls, C, S, SlotMerge.Sum, Add, "realloc_total", "Calls of realloc()."),
                6 => new(StatsLayout.ReallocarrayCalls, C, S, SlotMerge.Sum, Add, "reallocarray_total", "Calls of reallocarray()."),
                7 => new(StatsLayout.MemalignCalls, C, S, SlotMerge.Sum, Add, "memalign_total", "Calls of memalign()."),
                8 => new(StatsLayout.PosixMemalignCalls, C, S, SlotMerge.Sum, Add, "posix_memalign_total", "Calls of posix_memalign()."),
                9 => new(StatsLayout.AlignedAllocCalls, C, S, SlotMerge.Sum, Add, "aligned_alloc_total", "Calls of aligned_alloc()."),
                10 => new(StatsLayout.VallocCalls, C, S, SlotMerge.Sum, Add, "valloc_total", "Calls of valloc()."),
                11 => new(StatsLayout.PvallocCalls, C, S, SlotMerge.Sum, Add, "pvalloc_total", "Calls of pvalloc()."),
                12 => new(StatsLayout.UsableSizeCalls, C, S, SlotMerge.Sum, Add, "malloc_usable_size_total", "Calls of malloc_usable_size()."),
                13 => new(StatsLayout.CfreeCalls, C, S, SlotMerge.Sum, Add, "cfree_total", "Calls of cfree() (also counted in konfiscator_free_total)."),
                14 => new(StatsLayout.MunmapCalls, C, P, SlotMerge.ProcessSlot, Add, "munmap_total", "munmap() calls that returned memory to the OS."),
                15 => new(StatsLayout.FailedAllocations, C, S, SlotMerge.Sum, Add, "failed_allocations_total", "Allocation calls that failed with ENOMEM."),
                16 => new(StatsLayout.BytesAllocated, C, S, SlotMerge.Sum, Add, "allocated_bytes_total", "Usable bytes handed out by allocation calls."),
                17 => new(StatsLayout.BytesFreed, C, S, SlotMerge.Sum, Add, "freed_bytes_total", "Usable bytes given back by free and realloc."),
                // Levels.
                18 => new(StatsLayout.BytesInUse, G, S, SlotMerge.SignedSum, Add, "in_use_bytes", "Usable bytes allocated and not yet freed (live processes)."),
                19 => new(StatsLayout.PeakBytesInUse, G, P, SlotMerge.ProcessSlot, Largest, "peak_in_use_bytes", "Highest bytes in use of a process since it started; for a group, the highest among its live processes."),
                20 => new(StatsLayout.BytesMapped, G, P, SlotMerge.ProcessSlot, Add, "mapped_bytes", "Bytes currently mapped from the OS (live processes)."),
                21 => new(StatsLayout.FreeBytes, G, S, SlotMerge.Sum, Add, "free_bytes", "Bytes in free blocks of the heap's regions (live processes)."),
                22 => new(StatsLayout.FreeBlocks, G, S, SlotMerge.Sum, Add, "free_blocks", "Free blocks in the heap's regions (live processes)."),
                23 => new(StatsLayout.CachedBytes, G, S, SlotMerge.SignedSum, Add, "cached_bytes", "Bytes of blocks held by thread caches, free to the program but not to the heap (live processes)."),
                24 => new(StatsLayout.CacheRefillBlocks, C, S, SlotMerge.Sum, Add, "cache_refill_blocks_total", "Blocks the thread caches took from the heap."),
                25 => new(StatsLayout.CacheReturnBlocks, C, S, SlotMerge.Sum, Add, "cache_return_blocks_total", "Blocks the thread caches gave back to the heap."),
                26 => new(StatsLayout.LargestFreeBlock, G, S, SlotMerge.Max, Largest, "largest_free_block_bytes", "Size of the largest free block; for a group, the largest among its live processes."),
                // Not served on their own.
                27 => new(StatsLayout.ProcessBytesInUse, G, P, SlotMerge.ProcessSlot, Add, null, "Process-wide bytes in use, as reported so far (for the peak)."),
                28 => new(StatsLayout.RequestSizeSum, C, S, SlotMerge.Sum, Add, null, "Sum of requested sizes (the request-size histogram's _sum)."),
                _ => new(-1, C, S, SlotMerge.Sum, Add, null, null),
            };
        }

        /// <summary>The row of counter index <paramref name="counter"/>; histogram buckets and unused
        /// indices are counters summed over the slots, with no name. A walk over the rows: for set-up
        /// and slow paths (the library and the reader look it up once into tables of their own).</summary>
        public static FigureSchema Of(int counter)
        {
            for (int row = 0; row < Rows; row++)
            {
                FigureSchema f = At(row);
                if (f.Counter == counter) return f;
            }
            return new(counter, FigureKind.Counter, FigureScope.Slots, SlotMerge.Sum, GroupAggregation.Sum, null, null);
        }
    }
}
