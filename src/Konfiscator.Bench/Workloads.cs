namespace Konfiscator.Bench;

/// <summary>One workload of the benchmark.</summary>
/// <param name="Id">Short id used on the command line and in the results (e.g. "fifo").</param>
/// <param name="Title">Short label for tables and the chart.</param>
/// <param name="Description">One sentence on what it does.</param>
public sealed record WorkloadInfo(string Id, string Title, string Description)
{
    /// <summary>The source file in bench/ (a C program, or a python script).</summary>
    internal string Source { get; init; } = "";

    /// <summary>Fixed arguments (key=value); scale=… is added by the harness.</summary>
    internal IReadOnlyList<string> Arguments { get; init; } = [];

    internal bool IsPython => Source.EndsWith(".py", StringComparison.Ordinal);

    /// <summary>True when the time is the allocator's: tight loops of malloc and free (or the
    /// placement of what they return) with little work of the program's own between calls.</summary>
    public bool AllocatorBound { get; init; }

    /// <summary>A program the workload runs (found on the PATH), e.g. "sqlite3"; null for none.</summary>
    internal string? Tool { get; init; }
}

/// <summary>The workload catalog.</summary>
internal static class WorkloadCatalog
{
    public const string WorkingSet1 = "working-set-1t";
    public const string WorkingSet2 = "working-set-2t";
    public const string Fragmentation = "fragmentation";

    public static readonly IReadOnlyList<WorkloadInfo> All =
    [
        new("fifo", "small FIFO", "100k small blocks (8–128 B) per batch, freed in allocation order")
            { Source = "small_blocks.c", Arguments = ["lifo=0"] },
        new("lifo", "small LIFO", "100k small blocks (8–128 B) per batch, freed in reverse order")
            { Source = "small_blocks.c", Arguments = ["lifo=1"] },
        new(WorkingSet1, "working set 1T", "random sizes 8 B–32 KiB, P(size) ∝ 1/size², 4000 live blocks, 1 thread")
            { Source = "working_set.c", Arguments = ["threads=1"] },
        new(WorkingSet2, "working set 2T", "the same per-thread work on 2 threads at once")
            { Source = "working_set.c", Arguments = ["threads=2"] },
        new("producer-consumer", "prod/cons", "blocks allocated by one thread, freed by another (bounded queue)")
            { Source = "producer_consumer.c" },
        new("realloc-growth", "realloc growth", "1000 buffers grown by small appends, interleaved, with realloc")
            { Source = "realloc_growth.c" },
        new("large-blocks", "large blocks", "blocks of 64 KiB–4 MiB, every byte written, 8 live")
            { Source = "large_blocks.c" },
        new(Fragmentation, "fragmentation", "interleaved short/long lifetimes and a shifting size mix; peak live bytes")
            { Source = "fragmentation.c" },
        new("python", "python3", "a real program: python3 builds records, JSON round trip, regex, sort")
            { Source = "python_real.py" },
        new("batch-fifo", "batch FIFO", "batches of 200–4000 blocks of 16–256 B, each touched twice, freed in allocation order")
            { Source = "small_batches.c", Arguments = ["lifo=0"], AllocatorBound = true },
        new("batch-lifo", "batch LIFO", "the same batches freed in reverse order")
            { Source = "small_batches.c", Arguments = ["lifo=1"], AllocatorBound = true },
        new("larson", "larson", "server: 2 lanes of 1000 blocks (8–1000 B) replaced at random; each thread's blocks go to the next thread")
            { Source = "larson.c", AllocatorBound = true },
        new("cross-thread", "cross-thread", "4 threads allocate batches of 100 blocks (8–512 B) and free each other's (shared FIFO)")
            { Source = "cross_thread.c", AllocatorBound = true },
        new("cache-scratch", "cache scratch", "passive false sharing: 2 threads free objects another thread allocated, then write into their own")
            { Source = "cache_scratch.c", AllocatorBound = true },
        new("bignum", "bignum", "tiny immutable bignums (8–60 B): Pascal's triangle, products and sums, operands freed at once")
            { Source = "bignum.c", AllocatorBound = true },
        new("aligned", "aligned", "10 000 live blocks (32–288 B); each step frees a random one and makes a posix_memalign(16..1024) block")
            { Source = "aligned.c", AllocatorBound = true },
        new("gcc", "gcc -O2", "a real program: gcc -O2 compiles and links a generated 90 KB C file; the result runs")
            { Source = "real_gcc.c", Tool = "gcc" },
        new("sqlite", "sqlite3", "a real program: the sqlite3 shell loads 40 000 INSERTs into a memory database and queries it")
            { Source = "real_sqlite.c", Tool = "sqlite3" },
    ];

    public static WorkloadInfo? Find(string id) =>
        All.FirstOrDefault(w => string.Equals(w.Id, id, StringComparison.OrdinalIgnoreCase));
}
