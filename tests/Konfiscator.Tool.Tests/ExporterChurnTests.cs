using System.Diagnostics;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>
/// Issue 8, one of the trial's cases that passed and must keep passing: an exporter scraped over
/// and over while 1 000 short preloaded processes start and exit, 50 at a time. Every counter of
/// the group never goes down from one scrape to the next, and at the end the group's totals are
/// exactly what the processes did. The exact figure: each child (native/kchurn.c) stops making
/// allocator calls before it tells the spawner it is ready, and stays alive until told to go, so
/// the counts its segment shows while it waits are its final ones; the test reads them then.
/// </summary>
public sealed class ExporterChurnTests : IDisposable
{
    private const int Processes = 1000;
    private const int Batch = 50;
    private const string Command = "kchurn";

    private readonly SemaphoreSlim _scrapeLock = new(1, 1);
    private readonly Dictionary<string, double> _last = new();
    private int _scrapes;

    public ExporterChurnTests() => ArtifactsCheck.RequireBuilt();

    public void Dispose() => _scrapeLock.Dispose();

    [ArtifactsFact]
    public async Task A_thousand_churning_processes_keep_every_counter_monotonic_and_exact()
    {
        using var work = new TempDir("churn");
        using var stats = new TempDir("stats", inMemory: true);
        string program = Artifacts.CompileC("kchurn.c", work.Path, "-O0", "-fno-builtin");
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
        var url = await exporter.WaitForMetricsUrlAsync();

        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in new[] { "spawn", Artifacts.Library, stats.Path, $"{Processes}", $"{Batch}" })
            start.ArgumentList.Add(a);
        // The spawner itself runs on glibc's malloc: only its children are in the group.
        start.Environment.Remove("LD_PRELOAD");
        using var spawner = Process.Start(start)!;
        var stderr = spawner.StandardError.ReadToEndAsync();

        // Final counts of every child, read from its segment while it waits (keyed by incarnation).
        var finals = new Dictionary<IncarnationKey, (ulong Mallocs, ulong Frees)>();
        using var stop = new CancellationTokenSource();
        var scraper = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested) await ScrapeAndCheckAsync(url);
        });
        try
        {
            int batches = 0;
            // A bound, not a measurement: a spawner that hangs fails the test instead of stalling it.
            while (await spawner.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(3)) is { } line && line != "done")
            {
                if (scraper.IsFaulted) await scraper;
                Assert.StartsWith("ready ", line);
                var pids = line[6..].Split(' ').Select(int.Parse).ToHashSet();
                var scan = DirectoryScan.Run(stats.Path);
                var waiting = scan.Segments.Where(s => s.Live && s.Stats.Command == Command && pids.Contains(s.Stats.Pid)).ToList();
                Assert.True(waiting.Count == pids.Count, $"batch {batches}: {waiting.Count} segments for {pids.Count} waiting children");
                foreach (var s in waiting)
                {
                    Assert.True(s.Stats[StatsLayout.MallocCalls] >= 50, $"{s.Stats.Key}: {s.Stats[StatsLayout.MallocCalls]} mallocs");
                    Assert.True(finals.TryAdd(s.Stats.Key, (s.Stats[StatsLayout.MallocCalls], s.Stats[StatsLayout.FreeCalls])), $"{s.Stats.Key} seen twice");
                }
                await ScrapeAndCheckAsync(url);
                await spawner.StandardInput.WriteLineAsync("go");
                await spawner.StandardInput.FlushAsync();
                batches++;
            }
            await spawner.WaitForExitAsync();
            Assert.True(spawner.ExitCode == 0, $"spawner: exit {spawner.ExitCode}\n{await stderr}");
            Assert.Equal(Processes / Batch, batches);
        }
        finally
        {
            stop.Cancel();
            await scraper;
            if (!spawner.HasExited) spawner.Kill(entireProcessTree: true);
        }

        Assert.Equal(Processes, finals.Count);
        var final = await ScrapeAndCheckAsync(url);
        Assert.Equal((double)Processes, final.Value("konfiscator_exited_processes_total", ("command", Command)));
        Assert.Equal(0, final.Value("konfiscator_processes", ("command", Command)));
        Assert.Equal((double)finals.Values.Aggregate(0UL, (t, v) => t + v.Mallocs), final.Value("konfiscator_malloc_total", ("command", Command)));
        Assert.Equal((double)finals.Values.Aggregate(0UL, (t, v) => t + v.Frees), final.Value("konfiscator_free_total", ("command", Command)));
        // The scrapes during the churn: one per batch at least, all compared with the one before.
        Assert.True(_scrapes > Processes / Batch, $"{_scrapes} scrapes");
        Assert.Equal([SegmentFileName.ExporterPidFile], stats.Names());
    }

    /// <summary>One scrape; every counter series of the group (a name ending in _total, or a
    /// histogram's _count, _sum and _bucket) is at least what the previous scrape said. Scrapes
    /// are one at a time, so each answer is later than the one before.</summary>
    private async Task<Exposition> ScrapeAndCheckAsync(Uri url)
    {
        await _scrapeLock.WaitAsync();
        try
        {
            var e = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
            foreach (var s in e.Samples)
            {
                if (!s.Labels.TryGetValue("command", out var c) || c != Command) continue;
                if (!(s.Name.EndsWith("_total", StringComparison.Ordinal) || s.Name.EndsWith("_count", StringComparison.Ordinal)
                      || s.Name.EndsWith("_sum", StringComparison.Ordinal) || s.Name.EndsWith("_bucket", StringComparison.Ordinal)))
                    continue;
                string key = s.Name + "{" + string.Join(",", s.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
                if (_last.TryGetValue(key, out double before))
                    Assert.True(s.Value >= before, $"scrape {_scrapes}: {key} went down from {before} to {s.Value}");
                _last[key] = s.Value;
            }
            _scrapes++;
            return e;
        }
        finally
        {
            _scrapeLock.Release();
        }
    }
}
