using Konfiscator.Bench;

namespace Konfiscator.Bench.Tests;

/// <summary>Made-up runs for testing the results and the writers without running anything.</summary>
internal static class Synthetic
{
    public static readonly BenchEnvironment Environment = new()
    {
        Cpu = "Test CPU", Cores = 2, Kernel = "6.0-test", Glibc = "2.36", Compiler = "gcc (test) 12",
        StartedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero), Duration = TimeSpan.FromSeconds(75),
        Rounds = 3, Seed = 1, Scale = 1,
    };

    public static AllocatorInfo Allocator(string name, bool available = true) =>
        new(name, name == "glibc" ? null : $"/lib/lib{name}.so", available, available ? null : "not installed: test");

    public static RunSample Run(string workload, string allocator, double seconds, long rssBytes = 10 << 20,
        int round = 1, bool ok = true, string checksum = "42", long? live = null, string? error = null) => new()
    {
        Workload = workload, Allocator = allocator, Round = round, Sequence = round, Succeeded = ok,
        WallSeconds = seconds, PeakRssBytes = rssBytes, Checksum = checksum, PeakLiveBytes = live,
        Error = ok ? null : error ?? "killed by SIGSEGV: konfiscator: free(): invalid pointer",
        Signal = ok ? 0 : 11, ExitCode = ok ? 0 : -1,
    };

    /// <summary>fifo and fragmentation under glibc, konfiscator (one crash), jemalloc (not installed).</summary>
    public static BenchResults Results()
    {
        var workloads = BenchmarkRunner.Workloads.Where(w => w.Id is "fifo" or "fragmentation" or "working-set-1t" or "working-set-2t").ToList();
        var allocators = new[] { Allocator("glibc"), Allocator("konfiscator"), Allocator("jemalloc", available: false) };
        var samples = new List<RunSample>();
        for (int r = 1; r <= 3; r++)
        {
            samples.Add(Run("fifo", "glibc", 0.5 + r * 0.01, round: r));
            samples.Add(Run("fifo", "konfiscator", 0.25 + r * 0.01, round: r));
            samples.Add(Run("fragmentation", "glibc", 0.4, 60 << 20, round: r, live: 50 << 20));
            samples.Add(Run("fragmentation", "konfiscator", 0.8, 75 << 20, round: r, ok: r != 2, live: 50 << 20));
            samples.Add(Run("working-set-1t", "glibc", 0.3, round: r));
            samples.Add(Run("working-set-2t", "glibc", 0.3, round: r));
            samples.Add(Run("working-set-1t", "konfiscator", 0.2, round: r));
            samples.Add(Run("working-set-2t", "konfiscator", 0.4, round: r));
        }
        return ResultsBuilder.Build(Environment, allocators, workloads, samples);
    }
}
