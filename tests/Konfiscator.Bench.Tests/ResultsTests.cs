using Konfiscator.Bench;

namespace Konfiscator.Bench.Tests;

public class ResultsTests
{
    private readonly BenchResults _results = Synthetic.Results();

    [Fact]
    public void Cells_carry_medians_and_ratios_to_glibc()
    {
        var glibc = _results.Cell("fifo", "glibc")!;
        var konfiscator = _results.Cell("fifo", "konfiscator")!;
        Assert.Equal(CellStatus.Ok, konfiscator.Status);
        Assert.Equal(0.52, glibc.MedianWallSeconds!.Value, 9);
        Assert.Equal(0.27, konfiscator.MedianWallSeconds!.Value, 9);
        Assert.Equal(0.27 / 0.52, konfiscator.TimeRatio!.Value, 9);
        Assert.Equal(1.0, glibc.TimeRatio!.Value, 9);
        Assert.Equal(3, konfiscator.SucceededRuns);
    }

    [Fact]
    public void Each_cell_has_the_range_of_its_round_by_round_ratios_to_glibc()
    {
        var fifo = _results.Cell("fifo", "konfiscator")!;
        Assert.Equal(0.26 / 0.51, fifo.RoundRatioLow!.Value, 9);
        Assert.Equal(0.28 / 0.53, fifo.RoundRatioHigh!.Value, 9);
        // A failed run has no ratio in its round: the other rounds' count.
        var fragmentation = _results.Cell("fragmentation", "konfiscator")!;
        Assert.Equal(2.0, fragmentation.RoundRatioLow!.Value, 9);
        Assert.Equal(2.0, fragmentation.RoundRatioHigh!.Value, 9);
        // The rounds' geometric means cover the workloads with a ratio in every round (not fragmentation).
        var summary = _results.Summary("konfiscator")!;
        static double Mean(int r) => Math.Cbrt((0.25 + r * 0.01) / (0.5 + r * 0.01) * (0.2 / 0.3) * (0.4 / 0.3));
        Assert.Equal(Mean(1), summary.RoundGeometricMeanLow!.Value, 9);
        Assert.Equal(Mean(3), summary.RoundGeometricMeanHigh!.Value, 9);
        Assert.Null(_results.Summary("jemalloc")!.RoundGeometricMeanLow);
    }

    [Fact]
    public void A_failed_run_marks_the_cell_and_the_median_uses_the_other_runs()
    {
        var cell = _results.Cell("fragmentation", "konfiscator")!;
        Assert.Equal(CellStatus.Failed, cell.Status);
        Assert.Equal(2, cell.SucceededRuns);
        Assert.Equal(0.8, cell.MedianWallSeconds!.Value, 9);
        Assert.Contains("SIGSEGV", cell.Note);
        Assert.Contains(_results.Problems, p => p.Contains("fragmentation under konfiscator, round 2", StringComparison.Ordinal));
        Assert.True(_results.HasFailures);
    }

    [Fact]
    public void Only_glibc_or_konfiscator_failures_count_as_the_benchmarks_own()
    {
        Assert.True(_results.HasOwnFailures); // konfiscator crashed once in fragmentation

        // mimalloc failing a workload (as Debian 12's does on aligned) is shown, but is not ours.
        var workloads = BenchmarkRunner.Workloads.Where(w => w.Id == "fifo").ToList();
        var allocators = new[] { Synthetic.Allocator("glibc"), Synthetic.Allocator("konfiscator"), Synthetic.Allocator("mimalloc") };
        var samples = new List<RunSample>
        {
            Synthetic.Run("fifo", "glibc", 0.5), Synthetic.Run("fifo", "konfiscator", 0.4),
            Synthetic.Run("fifo", "mimalloc", 0.3, ok: false, error: "wrong output: misaligned block"),
        };
        var results = ResultsBuilder.Build(Synthetic.Environment, allocators, workloads, samples);
        Assert.True(results.HasFailures);
        Assert.False(results.HasOwnFailures);
        Assert.Contains(results.Problems, p => p.Contains("mimalloc", StringComparison.Ordinal));
    }

    [Fact]
    public void Fragmentation_waste_is_peak_rss_over_peak_live_bytes()
    {
        Assert.Equal(60.0 / 50, _results.Summary("glibc")!.FragmentationRssPerLiveByte!.Value, 9);
        Assert.Equal(75.0 / 50, _results.Summary("konfiscator")!.FragmentationRssPerLiveByte!.Value, 9);
    }

    [Fact]
    public void Geometric_mean_and_thread_scaling_per_allocator()
    {
        var k = _results.Summary("konfiscator")!;
        double expected = BenchStatistics.GeometricMean([0.27 / 0.52, 0.8 / 0.4, 0.2 / 0.3, 0.4 / 0.3]);
        Assert.Equal(expected, k.TimeRatioGeometricMean!.Value, 9);
        Assert.Equal(4, k.WorkloadsCounted);
        Assert.Equal(1, k.WorkloadsFailed);
        Assert.Equal(1.0, k.ThreadScaling!.Value, 9);      // 2 × 0.2 / 0.4
        Assert.Equal(2.0, _results.Summary("glibc")!.ThreadScaling!.Value, 9);
        Assert.Equal(1.0, _results.Summary("glibc")!.TimeRatioGeometricMean!.Value, 9);
    }

    [Fact]
    public void A_missing_allocator_is_reported_not_dropped()
    {
        Assert.Contains(_results.Allocators, a => a.Name == "jemalloc" && !a.Available);
        Assert.All(_results.Cells.Where(c => c.Allocator == "jemalloc"), c => Assert.Equal(CellStatus.NotInstalled, c.Status));
        Assert.Contains(_results.Problems, p => p.StartsWith("jemalloc: not installed", StringComparison.Ordinal));
        Assert.Null(_results.Summary("jemalloc")!.TimeRatioGeometricMean);
    }

    [Fact]
    public void A_checksum_other_than_glibcs_is_wrong_output()
    {
        var samples = new[]
        {
            Synthetic.Run("fifo", "glibc", 0.5, checksum: "7"),
            Synthetic.Run("fifo", "konfiscator", 0.4, checksum: "8"),
            Synthetic.Run("fifo", "jemalloc", 0.4, checksum: "7"),
        };
        var checkedSamples = ResultsBuilder.CheckOutputs(samples);
        Assert.True(checkedSamples[0].Succeeded);
        Assert.False(checkedSamples[1].Succeeded);
        Assert.StartsWith("wrong output", checkedSamples[1].Error);
        Assert.True(checkedSamples[2].Succeeded);
    }

    [Fact]
    public void Stats_overhead_is_konfiscator_over_konfiscator_nostats()
    {
        var workloads = BenchmarkRunner.Workloads.Where(w => w.Id == "fifo").ToList();
        var allocators = new[] { Synthetic.Allocator("glibc"), Synthetic.Allocator("konfiscator"), Synthetic.Allocator("konfiscator-nostats") };
        var samples = new[]
        {
            Synthetic.Run("fifo", "glibc", 0.5), Synthetic.Run("fifo", "konfiscator", 0.42),
            Synthetic.Run("fifo", "konfiscator-nostats", 0.40),
        };
        var results = ResultsBuilder.Build(Synthetic.Environment, allocators, workloads, samples);
        Assert.NotNull(results.StatsOverhead);
        Assert.Equal(1.05, results.StatsOverhead!.GeometricMean!.Value, 9);
    }

    [Fact]
    public void The_preload_check_compares_real_paths()
    {
        var glibc = Synthetic.Allocator("glibc");
        Assert.Null(RunExecutor.WrongMalloc("/lib/x86_64-linux-gnu/libc.so.6", glibc));
        Assert.NotNull(RunExecutor.WrongMalloc("/usr/lib/libjemalloc.so.2", glibc));
        Assert.NotNull(RunExecutor.WrongMalloc("?", glibc));
        var other = new AllocatorInfo("jemalloc", "/lib/libfoo.so", true, null);
        Assert.StartsWith("PRELOAD NOT IN EFFECT", RunExecutor.WrongMalloc("/lib/x86_64-linux-gnu/libc.so.6", other));
    }

    [Fact]
    public void Unknown_names_are_refused_and_glibc_is_always_the_baseline()
    {
        Assert.Throws<ArgumentException>(() => BenchmarkRunner.SelectWorkloads(["nope"]));
        Assert.Throws<ArgumentException>(() => BenchmarkRunner.SelectAllocators(["nope"], false));
        Assert.Equal(["glibc", "konfiscator", "konfiscator-nostats"], BenchmarkRunner.SelectAllocators(["KONFISCATOR"], true));
        Assert.Equal(BenchmarkRunner.Workloads.Count, BenchmarkRunner.SelectWorkloads(null).Count);
    }

    [Fact]
    public void Named_libraries_come_after_the_known_allocators_in_their_order_and_their_names_are_checked()
    {
        NamedLibrary Lib(string name) => new(name, "/nonexistent/" + name + ".so");
        Assert.Equal(["glibc", "konfiscator", "before", "v2.skeleton_1"],
            BenchmarkRunner.SelectAllocators(["konfiscator"], false, [Lib("before"), Lib("v2.skeleton_1")]));
        // A name the bench knows, in any case, would make two columns of one name.
        Assert.Contains("another name", Assert.Throws<ArgumentException>(
            () => BenchmarkRunner.SelectAllocators(null, false, [Lib("Mimalloc")])).Message);
        Assert.Contains("two libraries", Assert.Throws<ArgumentException>(
            () => BenchmarkRunner.SelectAllocators(null, false, [Lib("a"), Lib("A")])).Message);
        foreach (string bad in new[] { "", "-x", "a b", "a|b", "x/y", new string('n', 25) })
            Assert.NotNull(BenchmarkRunner.CheckLibraryName(bad));
        Assert.Null(BenchmarkRunner.CheckLibraryName(new string('n', 24)));
    }
}
