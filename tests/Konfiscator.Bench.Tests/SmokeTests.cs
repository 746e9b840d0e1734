using System.Diagnostics;
using System.Text.Json;
using System.Xml.Linq;
using Konfiscator.Bench;
using Konfiscator.Bench.Reports;
using Xunit.Abstractions;

namespace Konfiscator.Bench.Tests;

/// <summary>The real harness in quick mode on a small subset. Asserts that it produces results and
/// reports, never anything about speed (timings belong to benchmarks, not tests).</summary>
public class SmokeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Quick_run_of_two_workloads_under_glibc_and_konfiscator_produces_reports()
    {
        string? library = AllocatorCatalog.FindKonfiscator();
        Assert.True(library is not null && File.Exists(library),
            "libkonfiscator.so not found: build it first (./build.sh --lib-only) or set KONFISCATOR_LIB");

        var options = new BenchOptions
        {
            Quick = true,
            Rounds = 1,
            Workloads = ["fifo", "fragmentation"],
            Allocators = ["glibc", "konfiscator", "jemalloc"],
            // jemalloc pointed at a library that does not exist: reported as not installed, and the run goes on.
            AllocatorLibraries = new Dictionary<string, string> { ["jemalloc"] = "/nonexistent/libjemalloc.so.2" },
        };
        var reports = new List<BenchProgress>();
        var clock = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var results = await BenchmarkRunner.RunAsync(options, new SyncProgress(reports.Add), cts.Token);
        output.WriteLine($"harness took {clock.Elapsed.TotalSeconds:0.0} s");

        Assert.Equal(["fifo", "fragmentation"], results.Workloads.Select(w => w.Id));
        Assert.Equal(["glibc", "konfiscator", "jemalloc"], results.Allocators.Select(a => a.Name));
        Assert.False(results.Allocators.Single(a => a.Name == "jemalloc").Available);
        foreach (string w in new[] { "fifo", "fragmentation" })
        {
            foreach (string a in new[] { "glibc", "konfiscator" })
            {
                var cell = results.Cell(w, a)!;
                output.WriteLine($"{w} / {a}: {cell.Status} {cell.MedianWallSeconds} s {cell.MedianPeakRssBytes} B {cell.Note}");
                var run = Assert.Single(cell.Runs);
                Assert.True(run.Succeeded, $"{w} under {a}: {run.Error}");
                Assert.Equal(CellStatus.Ok, cell.Status);
                Assert.True(run.WallSeconds > 0);
                Assert.True(run.PeakRssBytes > 0);
            }
            Assert.Equal(CellStatus.NotInstalled, results.Cell(w, "jemalloc")!.Status);
        }
        Assert.NotNull(results.Cell("fragmentation", "glibc")!.PeakLiveBytes);
        Assert.Equal(4, reports.Count(p => p.LastRun is not null));
        Assert.Contains(reports, p => p.Phase == BenchPhase.Probing);
        Assert.Equal(BenchPhase.Finished, reports[^1].Phase);

        string md = MarkdownReport.Write(results);
        output.WriteLine(md);
        Assert.Contains("| workload | glibc | konfiscator | jemalloc |", md);
        using var json = JsonDocument.Parse(JsonReport.Write(results));
        Assert.Equal(6, json.RootElement.GetProperty("results").GetArrayLength());
        var svg = XDocument.Parse(SvgChart.Write(results));
        Assert.Equal("svg", svg.Root!.Name.LocalName);
    }

    [Fact]
    public async Task Quick_run_of_the_allocator_bound_and_real_program_workloads_succeeds_under_konfiscator()
    {
        string? library = AllocatorCatalog.FindKonfiscator();
        Assert.True(library is not null && File.Exists(library),
            "libkonfiscator.so not found: build it first (./build.sh --lib-only) or set KONFISCATOR_LIB");
        var ids = BenchmarkRunner.Workloads.Where(w => w.AllocatorBound || w.Id is "gcc" or "sqlite").Select(w => w.Id).ToList();
        Assert.Contains("larson", ids);
        Assert.Contains("sqlite", ids);
        var options = new BenchOptions { Quick = true, Rounds = 1, Workloads = ids, Allocators = ["glibc", "konfiscator"] };
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var results = await BenchmarkRunner.RunAsync(options, null, cts.Token);
        foreach (string w in ids)
        {
            foreach (string a in new[] { "glibc", "konfiscator" })
            {
                var cell = results.Cell(w, a)!;
                output.WriteLine($"{w} / {a}: {cell.Status} {cell.MedianWallSeconds} s {cell.NsPerPair} ns/pair {cell.Note}");
                Assert.True(cell.Status != CellStatus.Unavailable, $"{w}: {cell.Note} (.ci/run installs it)");
                var run = Assert.Single(cell.Runs);
                Assert.True(run.Succeeded, $"{w} under {a}: {run.Error}");
                if (w is not "cache-scratch" and not "gcc" and not "sqlite")
                    Assert.True(cell.NsPerPair > 0, $"{w} under {a} counted no malloc+free pairs");
            }
        }
        Assert.False(results.HasFailures, string.Join("\n", results.Problems));
        string md = MarkdownReport.Write(results);
        Assert.Contains("larson †", md);
        Assert.Contains("ns per malloc+free pair", md);
    }

    [Fact]
    public async Task Disturbed_runs_are_made_again_after_the_rounds()
    {
        // A threshold below zero makes every run count as disturbed.
        var options = new BenchOptions
        {
            Quick = true, Rounds = 2, Workloads = ["lifo"], Allocators = ["glibc"], Warmup = false,
            MaxOtherCpuLoad = -1, DisturbedRetries = 1,
        };
        var results = await BenchmarkRunner.RunAsync(options);
        var cell = results.Cell("lifo", "glibc")!;
        Assert.Equal(2, cell.Runs.Count);
        Assert.All(cell.Runs, r => Assert.Equal(2, r.Attempts));
        Assert.Equal(2, results.Environment.RepeatedRuns);
        Assert.Contains("made again after the rounds", MarkdownReport.Write(results));
    }

    [Fact]
    public async Task A_preload_that_does_not_replace_malloc_stops_the_run()
    {
        // libz exists everywhere python3 does and defines no malloc: the process keeps glibc's.
        string? notAnAllocator = new[] { "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib64/libz.so.1" }
            .FirstOrDefault(File.Exists);
        if (notAnAllocator is null)
        {
            output.WriteLine("no libz.so.1 to stand in for a broken allocator: nothing to check");
            return;
        }
        var options = new BenchOptions
        {
            Quick = true, Rounds = 1, Workloads = ["fifo"], Allocators = ["glibc", "tcmalloc"], Warmup = false,
            AllocatorLibraries = new Dictionary<string, string> { ["tcmalloc"] = notAnAllocator! },
        };
        var e = await Assert.ThrowsAsync<BenchmarkException>(() => BenchmarkRunner.RunAsync(options));
        Assert.Contains("PRELOAD NOT IN EFFECT", e.Message);
        Assert.Contains("tcmalloc", e.Message);
    }

    [Fact]
    public async Task A_broken_allocator_fails_its_runs_and_the_run_goes_on()
    {
        // An "allocator" that hands out the same memory for every request: the workloads must notice.
        string dir = Path.Combine(Path.GetTempPath(), "kbench-broken-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string source = Path.Combine(dir, "broken.c"), library = Path.Combine(dir, "libbroken.so");
            await File.WriteAllTextAsync(source, """
                #include <stddef.h>
                #include <string.h>
                static char arena[1 << 22] __attribute__((aligned(16)));
                void *malloc(size_t n) { (void)n; return arena; }
                void free(void *p) { (void)p; }
                void *calloc(size_t a, size_t b) { memset(arena, 0, sizeof arena); (void)a; (void)b; return arena; }
                void *realloc(void *p, size_t n) { (void)p; (void)n; return arena; }
                """);
            using (var gcc = System.Diagnostics.Process.Start("gcc", ["-O1", "-shared", "-fPIC", "-o", library, source]))
            {
                await gcc.WaitForExitAsync();
                Assert.Equal(0, gcc.ExitCode);
            }
            var options = new BenchOptions
            {
                Quick = true, Rounds = 1, Workloads = ["fifo"], Allocators = ["glibc", "tcmalloc"], Warmup = false,
                AllocatorLibraries = new Dictionary<string, string> { ["tcmalloc"] = library },
            };
            var results = await BenchmarkRunner.RunAsync(options);
            var cell = results.Cell("fifo", "tcmalloc")!;
            output.WriteLine(cell.Note);
            Assert.Equal(CellStatus.Failed, cell.Status);
            Assert.Null(cell.MedianWallSeconds);
            Assert.Equal(CellStatus.Ok, results.Cell("fifo", "glibc")!.Status);
            Assert.True(results.HasFailures);
            Assert.False(results.HasOwnFailures);   // a third-party allocator's bug
            Assert.Contains(results.Problems, p => p.StartsWith("fifo under tcmalloc", StringComparison.Ordinal));
            Assert.Contains("**FAILED**", MarkdownReport.Write(results));
            XDocument.Parse(SvgChart.Write(results));

            // The same library named by the user is a build under study: its failure fails the run.
            var named = await BenchmarkRunner.RunAsync(options with
            {
                Allocators = ["glibc"], AllocatorLibraries = null, Libraries = [new NamedLibrary("mine", library)],
            });
            Assert.Equal(CellStatus.Failed, named.Cell("fifo", "mine")!.Status);
            Assert.True(named.HasOwnFailures);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_named_library_runs_interleaved_under_its_name_beside_the_others()
    {
        string? library = AllocatorCatalog.FindKonfiscator();
        Assert.True(library is not null && File.Exists(library),
            "libkonfiscator.so not found: build it first (./build.sh --lib-only) or set KONFISCATOR_LIB");
        // The library under a second name: two builds compared in one run, as a user would compare
        // this build with the last commit's.
        var options = new BenchOptions
        {
            Quick = true, Rounds = 2, Workloads = ["bignum"], Allocators = ["glibc", "konfiscator"], Warmup = false,
            Libraries = [new NamedLibrary("before", library!), new NamedLibrary("missing", "/nonexistent/libkonfiscator.so")],
        };
        var results = await BenchmarkRunner.RunAsync(options);

        Assert.Equal(["glibc", "konfiscator", "before", "missing"], results.Allocators.Select(a => a.Name));
        var before = results.Allocators.Single(a => a.Name == "before");
        Assert.True(before.Available && before.IsNamedLibrary && before.IsOwn);
        Assert.Contains("a copy of " + Path.GetFullPath(library!), before.Note);
        var missing = results.Allocators.Single(a => a.Name == "missing");
        Assert.False(missing.Available);
        Assert.Equal("not installed: no file at /nonexistent/libkonfiscator.so", missing.Note);

        var cell = results.Cell("bignum", "before")!;
        Assert.Equal(CellStatus.Ok, cell.Status);
        Assert.Equal(2, cell.Runs.Count);
        Assert.All(cell.Runs, r => Assert.True(r.Succeeded, r.Error));
        Assert.Equal(CellStatus.NotInstalled, results.Cell("bignum", "missing")!.Status);
        Assert.False(results.HasOwnFailures);

        Assert.Contains("| workload | glibc | konfiscator | before | missing |", MarkdownReport.Write(results));
        using var json = JsonDocument.Parse(JsonReport.Write(results));
        var entry = json.RootElement.GetProperty("allocators").EnumerateArray().Single(a => a.GetProperty("name").GetString() == "before");
        Assert.True(entry.GetProperty("named_library").GetBoolean());
        XDocument.Parse(SvgChart.Write(results));
    }

    /// <summary>Reports synchronously, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<BenchProgress> report) : IProgress<BenchProgress>
    {
        public void Report(BenchProgress value) => report(value);
    }
}
