using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>Processes of one command come and go between scrapes of a running exporter (real
/// processes, synthetic segments). With the real allocator the same test runs preloaded programs.</summary>
public class ChurnTests
{
    [Fact]
    public async Task Fifty_short_lived_processes_are_all_counted_and_leave_no_files()
    {
        using var dir = new TempDir();
        using var resident = new Sleeper();
        SegmentBuilder.For(resident, "worker").Requests(0, StatsLayout.MallocCalls, 16, 1000).WriteTo(dir.Path);
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        var url = await exporter.WaitForMetricsUrlAsync();

        var rng = new Random(3);
        ulong expected = 1000;
        var running = new List<Sleeper>();
        try
        {
            for (int i = 0; i < 50; i++)
            {
                var p = new Sleeper();
                running.Add(p);
                ulong calls = (ulong)rng.Next(1, 500);
                expected += calls;
                SegmentBuilder.For(p, "worker").Requests(0, StatsLayout.MallocCalls, (ulong)rng.Next(1, 1 << 20), calls).WriteTo(dir.Path);
                // End some of the running ones, in any order; scrape now and then.
                while (running.Count > 0 && rng.Next(3) == 0)
                {
                    int k = rng.Next(running.Count);
                    running[k].End();
                    running[k].Dispose();
                    running.RemoveAt(k);
                }
                if (i % 7 == 0)
                {
                    var e = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
                    Assert.Equal(1 + running.Count, e.Value("konfiscator_processes", ("command", "worker")));
                }
            }
        }
        finally
        {
            foreach (var p in running)
            {
                p.End();
                p.Dispose();
            }
        }

        var final = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
        Assert.Equal(expected, final.Value("konfiscator_malloc_total", ("command", "worker")));
        Assert.Equal(1, final.Value("konfiscator_processes", ("command", "worker")));
        Assert.Equal(50, final.Value("konfiscator_exited_processes_total", ("command", "worker")));
        Assert.Equal(expected, final.Value("konfiscator_request_size_bytes_count", ("command", "worker")));
        Assert.Equal(
            new[] { SegmentFileName.ExporterPidFile, SegmentFileName.Format(resident.Pid, 0) }.Order(StringComparer.Ordinal),
            dir.Names());
    }

    [Fact]
    public async Task Run_with_a_directory_another_exporter_collects_only_reads_it()
    {
        using var dir = new TempDir();
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        await exporter.WaitForMetricsUrlAsync();
        var (code, _, stderr) = await ToolProcess.RunAsync(["run", "--listen", "127.0.0.1:0", "--", "true"], new Dictionary<string, string?>
        {
            ["KONFISCATOR_LIB"] = Artifacts.HarmlessLibrary(),
            ["KONFISCATOR_STATS_DIR"] = dir.Path,
        });
        Assert.Equal(0, code);
        Assert.Contains($"already collected by process {exporter.Pid}", stderr);
        Assert.Contains("only reading it", stderr);
        // The exporter's claim is untouched.
        Assert.Equal(exporter.Pid, ExporterClaim.ReadClaim(dir.File(SegmentFileName.ExporterPidFile))?.Pid);
    }
}
