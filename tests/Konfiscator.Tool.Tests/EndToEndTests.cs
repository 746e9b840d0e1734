using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>With the real allocator, as ./build.sh lays it out: artifacts/bin/konfiscator finds
/// artifacts/lib/libkonfiscator.so and the driver itself. Fails when the artifacts are missing.</summary>
public class EndToEndTests
{
    public EndToEndTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public async Task Run_python_serves_its_figures_while_it_runs_and_passes_its_status_through()
    {
        var (tool, url) = await RunHarness.StartAsync(
            [Artifacts.Python, "-c", "import time, sys\nx = [bytearray(100) for _ in range(1000)]\ntime.sleep(3)\nsys.exit(7)"],
            tool: Artifacts.Tool);
        using (tool)
        {
            var e = await Net.ScrapeUntilAsync(url, x => x.Value("konfiscator_malloc_total", ("command", "python3")) > 1000);
            Assert.Equal(1, e.Value("konfiscator_processes", ("command", "python3")));
            Assert.True(e.Value("konfiscator_in_use_bytes", ("command", "python3")) > 100_000);
            Assert.Equal(7, await tool.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("python3 exited with status 7", tool.Stderr);
            Assert.Contains("malloc", tool.Stderr);
        }
    }

    [ArtifactsFact]
    public async Task Run_without_a_command_runs_the_seed_driver_and_holds()
    {
        using var tool = ToolProcess.Start(["run", "--listen", "127.0.0.1:0"], tool: Artifacts.Tool);
        var url = await tool.WaitForMetricsUrlAsync();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!tool.Stderr.Contains("still serving") && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(tool.Stderr.Contains("still serving"), tool.Stderr);
        Assert.Contains("index 49: value 49", tool.Stdout);
        var e = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
        string driver = Artifacts.DriverCommand;
        Assert.True(e.Value("konfiscator_malloc_total", ("command", driver)) >= 1, e.Text);
        Assert.True(e.Value("konfiscator_free_total", ("command", driver)) >= 1, e.Text);
        Assert.Equal(0, e.Value("konfiscator_processes", ("command", driver)));
        tool.Signal(2);
        Assert.Equal(0, await tool.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>The exact calls of kcounts between its sync points, read from its segment and from
    /// /metrics (per pid), including a free from another thread.</summary>
    [ArtifactsFact]
    public async Task Exact_counts_between_sync_points_in_the_segment_and_in_metrics()
    {
        using var work = new TempDir("e2e");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("kcounts.c", work.Path, "-O0", "-fno-builtin", "-pthread");
        var (tool, url) = await RunHarness.StartAsync([program, work.Path], perPid: true, tool: Artifacts.Tool,
            environment: new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats.Path });
        using (tool)
        {
            await WaitForFileAsync(work.File("ready1"), tool);
            var (s1, m1) = await ReadBothAsync(stats.Path, url);

            File.Create(work.File("go1")).Dispose();
            await WaitForFileAsync(work.File("ready2"), tool);
            var (s2, m2) = await ReadBothAsync(stats.Path, url);

            // Every discrepancy is collected, so one run shows all of them.
            var problems = new List<string>();
            void Check(string what, double expected, double actual)
            {
                if (expected != actual) problems.Add($"{what}: expected {expected}, got {actual}");
            }
            ulong Diff(ProcessStats a, ProcessStats b, int counter) => b[counter] - a[counter];

            // kcounts also allocates and frees every size 1..1024, three times over.
            const int EverySize = 1024, SizeRounds = 3, SizeCalls = EverySize * SizeRounds;
            Check("segment malloc", 1000 + SizeCalls, Diff(s1, s2, StatsLayout.MallocCalls));
            Check("segment calloc", 100 + 10, Diff(s1, s2, StatsLayout.CallocCalls));
            Check("segment realloc", 50, Diff(s1, s2, StatsLayout.ReallocCalls));
            Check("segment posix_memalign", 20, Diff(s1, s2, StatsLayout.PosixMemalignCalls));
            Check("segment free", 1180 + SizeCalls, Diff(s1, s2, StatsLayout.FreeCalls));
            // Everything allocated was freed: bytes in use are back where they were.
            Check("segment bytes in use after freeing everything", s1[StatsLayout.BytesInUse], s2[StatsLayout.BytesInUse]);
            Check("segment bytes freed = bytes allocated", Diff(s1, s2, StatsLayout.BytesAllocated), Diff(s1, s2, StatsLayout.BytesFreed));
            // 1000 blocks of 24 bytes were live at once.
            if (s2[StatsLayout.PeakBytesInUse] < s1[StatsLayout.BytesInUse] + 24_000)
                problems.Add($"segment peak: {s2[StatsLayout.PeakBytesInUse]}, less than the {s1[StatsLayout.BytesInUse]} in use before + 1000 live blocks of 24 bytes");
            // Histogram: one entry per allocation call, in the bucket of its size; sizes
            // 1..1024 put 1, 1, 2, 4, ..., 512 requests per round in buckets le=1, le=2, ..., le=1024.
            ulong EverySizeIn(int bucket) => (ulong)SizeRounds * (bucket == 0 ? 1UL : 1UL << (bucket - 1));
            for (int bucket = 0; bucket <= 10; bucket++)
            {
                ulong known = bucket switch { 5 => 1000, 6 => 50, 7 => 100, 8 => 20, _ => 0 };
                Check($"histogram bucket {bucket}", known + EverySizeIn(bucket), s2.Histogram[bucket] - s1.Histogram[bucket]);
            }
            Check("histogram count", 1180 + SizeCalls, s2.HistogramCount - s1.HistogramCount);
            Check("histogram sum", 1000 * 24 + 50 * 64 + 100 * 100 + 10 * 3000 + 20 * 256 + SizeRounds * (EverySize * (EverySize + 1) / 2),
                  Diff(s1, s2, StatsLayout.RequestSizeSum));

            // The same differences through /metrics.
            foreach (var (name, expected) in new[]
                     {
                         ("konfiscator_malloc_total", 1000.0 + SizeCalls), ("konfiscator_calloc_total", 110), ("konfiscator_realloc_total", 50),
                         ("konfiscator_posix_memalign_total", 20), ("konfiscator_free_total", 1180 + SizeCalls),
                         ("konfiscator_request_size_bytes_count", 1180 + SizeCalls), ("konfiscator_in_use_bytes", 0),
                     })
                Check($"/metrics {name}", expected, m2(name) - m1(name));

            // Phase B: one thread allocates 500 blocks, another frees them.
            File.Create(work.File("go2")).Dispose();
            await WaitForFileAsync(work.File("ready3"), tool);
            var (s3, m3) = await ReadBothAsync(stats.Path, url);
            Check("segment malloc in another thread", 500, Diff(s2, s3, StatsLayout.MallocCalls));
            Check("segment free from another thread", 500, Diff(s2, s3, StatsLayout.FreeCalls));
            Check("segment bytes in use after a cross-thread free", s2[StatsLayout.BytesInUse], s3[StatsLayout.BytesInUse]);
            Check("/metrics in use after a cross-thread free", 0, m3("konfiscator_in_use_bytes") - m2("konfiscator_in_use_bytes"));
            Assert.True(problems.Count == 0, string.Join("\n", problems));

            File.Create(work.File("go3")).Dispose();
            Assert.Equal(0, await tool.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains("kcounts exited with status 0", tool.Stderr);
            Assert.DoesNotContain(stats.Names(), n => n.EndsWith(".kstats", StringComparison.Ordinal));
        }
    }

    /// <summary>A fork child publishes a segment of its own: the calls in it are the child's
    /// alone (the parent's came before the fork), the bytes in use are those of the heap it
    /// inherited plus its own, and the parent's segment does not see the child's calls.</summary>
    [ArtifactsFact]
    public async Task A_fork_child_publishes_its_own_calls_and_the_heap_it_inherited()
    {
        using var work = new TempDir("fork");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("kfork.c", work.Path, "-O0", "-fno-builtin");
        using var parent = StartPreloaded(program, work.Path, stats.Path);
        try
        {
            await WaitForFileAsync(work.File("ready1"), null);
            var before = OnlySegment(stats.Path);
            Assert.Equal(parent.Id, before.Pid);
            Assert.True(before[StatsLayout.BytesInUse] >= 300 * 96, $"in use before the fork: {before[StatsLayout.BytesInUse]}");

            File.Create(work.File("go1")).Dispose();
            await WaitForFileAsync(work.File("ready2"), null);
            int childPid = int.Parse(File.ReadAllText(work.File("child")), CultureInfo.InvariantCulture);
            var scan = DirectoryScan.Run(stats.Path);
            Assert.Empty(scan.BadFiles);
            Assert.Equal(2, scan.Segments.Count);
            var child = scan.Segments.Single(s => s.Stats.Pid == childPid).Stats;
            var parentNow = scan.Segments.Single(s => s.Stats.Pid == parent.Id).Stats;

            Assert.Equal(parent.Id, child.ParentPid);
            Assert.Equal(10UL, child[StatsLayout.MallocCalls]);
            Assert.Equal(0UL, child[StatsLayout.FreeCalls]);
            Assert.Equal(10UL, child.HistogramCount);
            // 32-byte requests: 48-byte blocks, 40 usable bytes each (docs/heap.md, "Blocks").
            Assert.Equal(10UL * 40, child[StatsLayout.BytesAllocated]);
            Assert.Equal(before[StatsLayout.BytesInUse] + 10 * 40, child[StatsLayout.BytesInUse]);
            Assert.Equal(before[StatsLayout.MallocCalls], parentNow[StatsLayout.MallocCalls]);
            Assert.Equal(before[StatsLayout.BytesInUse], parentNow[StatsLayout.BytesInUse]);

            File.Create(work.File("go2")).Dispose();
            Assert.True(parent.WaitForExit(20_000));
            Assert.Equal(0, parent.ExitCode);
        }
        finally
        {
            if (!parent.HasExited) parent.Kill(entireProcessTree: true);
        }
    }

    /// <summary>The exporter (not run) over a directory where a preloaded program publishes; a real
    /// Prometheus server scrapes it and has the program's value; `stats` shows the same process.</summary>
    [ArtifactsFact]
    public async Task Prometheus_scrapes_a_preloaded_program_through_the_exporter()
    {
        using var work = new TempDir("e2e");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("kcounts.c", work.Path, "-O0", "-fno-builtin", "-pthread");
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
        var url = await exporter.WaitForMetricsUrlAsync();

        using var kcounts = StartPreloaded(program, work.Path, stats.Path);
        try
        {
            await WaitForFileAsync(work.File("ready1"), null);
            File.Create(work.File("go1")).Dispose();
            await WaitForFileAsync(work.File("ready2"), null);
            var segment = OnlySegment(stats.Path);
            Assert.Equal(kcounts.Id, segment.Pid);

            using var prometheus = PrometheusServer.Start(url);
            double value = await prometheus.WaitForAsync("konfiscator_malloc_total{command=\"kcounts\"}", v => v > 0);
            Assert.Equal(segment[StatsLayout.MallocCalls], (ulong)value);
            Assert.Equal(1, await prometheus.WaitForAsync("konfiscator_processes{command=\"kcounts\"}", v => v == 1));

            var (code, json, stderr) = await RunToolAsync(["stats", "--json", "--stats-dir", stats.Path]);
            Assert.True(code == 0, stderr);
            using var doc = JsonDocument.Parse(json);
            Assert.Equal(kcounts.Id, doc.RootElement.GetProperty("pid").GetInt32());
            Assert.Equal("kcounts", doc.RootElement.GetProperty("command").GetString());

            File.Create(work.File("go2")).Dispose();
            await WaitForFileAsync(work.File("ready3"), null);
            File.Create(work.File("go3")).Dispose();
            await kcounts.WaitForExitAsync();
            Assert.Equal(0, await prometheus.WaitForAsync("konfiscator_processes{command=\"kcounts\"}", v => v == 0));
            double final = await prometheus.WaitForAsync("konfiscator_malloc_total{command=\"kcounts\"}", v => v >= value + 500);
            Assert.True(final >= value + 500);
        }
        finally
        {
            if (!kcounts.HasExited) kcounts.Kill();
        }
    }

    /// <summary>50 short-lived preloaded processes of one command come and go between scrapes.</summary>
    [ArtifactsFact]
    public async Task Fifty_preloaded_processes_come_and_go_between_scrapes()
    {
        using var stats = new TempDir("stats");
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
        var url = await exporter.WaitForMetricsUrlAsync();
        for (int i = 0; i < 50; i++)
        {
            var start = new ProcessStartInfo(Artifacts.Driver) { UseShellExecute = false, RedirectStandardOutput = true };
            start.Environment["LD_PRELOAD"] = Artifacts.Library;
            start.Environment["KONFISCATOR_STATS_DIR"] = stats.Path;
            using var driver = Process.Start(start)!;
            await driver.StandardOutput.ReadToEndAsync();
            await driver.WaitForExitAsync();
            Assert.Equal(0, driver.ExitCode);
            if (i % 10 == 0) await Net.ScrapeAsync(url);
        }
        var e = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
        string driverCommand = Artifacts.DriverCommand;
        Assert.Equal(50, e.Value("konfiscator_exited_processes_total", ("command", driverCommand)));
        Assert.True(e.Value("konfiscator_malloc_total", ("command", driverCommand)) >= 50, e.Text);
        Assert.True(e.Value("konfiscator_free_total", ("command", driverCommand)) >= 50, e.Text);
        Assert.Equal(0, e.Value("konfiscator_processes", ("command", driverCommand)));
        Assert.Equal([SegmentFileName.ExporterPidFile], stats.Names());
    }

    /// <summary>A test program under the library, publishing into <paramref name="statsDir"/>,
    /// with its sync-point directory as its one argument.</summary>
    private static Process StartPreloaded(string program, string workDir, string statsDir)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false };
        start.ArgumentList.Add(workDir);
        start.Environment["LD_PRELOAD"] = Artifacts.Library;
        start.Environment["KONFISCATOR_STATS_DIR"] = statsDir;
        return Process.Start(start)!;
    }

    private static ProcessStats OnlySegment(string directory)
    {
        var scan = DirectoryScan.Run(directory);
        Assert.Empty(scan.BadFiles);
        return Assert.Single(scan.Segments).Stats;
    }

    private static async Task<(ProcessStats Segment, Func<string, double> Metric)> ReadBothAsync(string directory, Uri url)
    {
        var segment = OnlySegment(directory);
        var e = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
        string pid = segment.Pid.ToString(CultureInfo.InvariantCulture);
        return (segment, name => e.Value(name, ("command", segment.Command), ("pid", pid)) ?? double.NaN);
    }

    private static async Task WaitForFileAsync(string path, ToolProcess? tool)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(path))
        {
            if (DateTime.UtcNow > deadline || tool is { HasExited: true })
                throw new Xunit.Sdk.XunitException($"{path} never appeared\n{tool?.Stderr}");
            await Task.Delay(10);
        }
    }

    private static async Task<(int, string, string)> RunToolAsync(string[] args)
    {
        using var tool = ToolProcess.Start(args, tool: Artifacts.Tool);
        int code = await tool.WaitForExitAsync(TimeSpan.FromSeconds(20));
        return (code, tool.Stdout, tool.Stderr);
    }
}
