using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Profiling;
using Prometheus;

namespace Konfiscator.Tool.Metrics;

/// <summary>The allocation samples as metrics (docs/metrics.md, docs/profiling.md):
/// <c>konfiscator_site_live_bytes{command,site}</c> for the top <see cref="TopSites"/> sites of each
/// group (bounded cardinality), <c>konfiscator_sampled_bytes</c>, <c>konfiscator_samples_total</c>,
/// <c>konfiscator_sample_drops_total{reason}</c> and the tables the exporter could not read.
/// Counters add the final values of a group's ended processes (read from their files just before
/// the collector removes them) to the live ones', with IncTo so they never go down.</summary>
internal sealed class SampleMetrics
{
    public const int TopSites = 10;

    private static readonly (string Reason, int Counter)[] DropReasons =
    [
        ("table_full", SampleLayout.CounterTableFull),
        ("stack_table_full", SampleLayout.CounterStackTableFull),
        ("no_frames", SampleLayout.CounterNoFrames),
        ("reentrant", SampleLayout.CounterReentrant),
        ("forking", SampleLayout.CounterForking),
        ("stale_free", SampleLayout.CounterStaleFrees),
    ];

    private readonly string _directory;
    private readonly Symbolizer _symbolizer;
    private readonly Gauge _siteLive;
    private readonly Gauge _sampledBytes;
    private readonly Counter _samples;
    private readonly Counter _drops;
    private readonly Counter _readErrors;
    private readonly object _gate = new();
    private readonly Dictionary<string, ulong[]> _folded = new(StringComparer.Ordinal);
    private readonly Dictionary<SampleReadError, ulong> _errors = SampleReader.AllErrors.ToDictionary(e => e, _ => 0UL);
    private readonly HashSet<(string Command, string Site)> _sites = new();
    private readonly HashSet<string> _sampledCommands = new(StringComparer.Ordinal);

    public SampleMetrics(string directory, Symbolizer symbolizer, MetricFactory factory)
    {
        _directory = directory;
        _symbolizer = symbolizer;
        _siteLive = factory.CreateGauge(Figures.Prefix + "site_live_bytes",
            $"Bytes in use by allocation site (estimated from samples), the top {TopSites} sites of each command; site = the innermost frame outside the allocator and libc.",
            new GaugeConfiguration { LabelNames = ["command", "site"] });
        _sampledBytes = factory.CreateGauge(Figures.Prefix + "sampled_bytes",
            "Bytes in use estimated from the live allocation samples (live processes).",
            new GaugeConfiguration { LabelNames = ["command"] });
        _samples = factory.CreateCounter(Figures.Prefix + "samples_total", "Allocations sampled.",
            new CounterConfiguration { LabelNames = ["command"] });
        _drops = factory.CreateCounter(Figures.Prefix + "sample_drops_total",
            "Samples lost or degraded, by reason (table_full, stack_table_full, no_frames, reentrant, forking, stale_free).",
            new CounterConfiguration { LabelNames = ["command", "reason"] });
        _readErrors = factory.CreateCounter(Figures.Prefix + "exporter_sample_read_errors_total",
            "Sample tables in the stats directory the exporter could not read (each reading), by reason.",
            new CounterConfiguration { LabelNames = ["reason"] });
        foreach (var error in SampleReader.AllErrors)
            _readErrors.WithLabels(SampleReader.ReasonLabel(error)).IncTo(0);
    }

    /// <summary>The collector folds an ended process in: keep its final sample counters.</summary>
    public void OnFold(ProcessStats stats, string path)
    {
        var read = SampleReader.ReadCounters(path);
        if (!read.Ok) return;
        lock (_gate)
        {
            if (!_folded.TryGetValue(stats.Command, out var sums))
                _folded[stats.Command] = sums = new ulong[SampleLayout.CounterCount];
            for (int i = 0; i < sums.Length; i++) sums[i] += read.Table!.Counters[i];
        }
    }

    public void Apply(Snapshot snapshot)
    {
        lock (_gate)
        {
            var counters = new Dictionary<string, ulong[]>(StringComparer.Ordinal);
            foreach (var (command, sums) in _folded) counters[command] = (ulong[])sums.Clone();
            var sites = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
            var sampled = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var process in snapshot.Live)
            {
                var read = SampleReader.Read(Path.Combine(_directory, process.FileName));
                if (!read.Ok)
                {
                    if (read.Error != SampleReadError.Absent) _errors[read.Error]++;
                    continue;
                }
                var table = read.Table!;
                if (!counters.TryGetValue(process.Command, out var sums))
                    counters[process.Command] = sums = new ulong[SampleLayout.CounterCount];
                for (int i = 0; i < sums.Length; i++) sums[i] += table.Counters[i];
                var profile = HeapProfile.Build(table, _symbolizer, process.Pid, process.Command, peak: false);
                sampled[process.Command] = sampled.GetValueOrDefault(process.Command) + profile.InUseBytes;
                if (!sites.TryGetValue(process.Command, out var bySite))
                    sites[process.Command] = bySite = new Dictionary<string, double>(StringComparer.Ordinal);
                foreach (var site in profile.Sites())
                    bySite[site.Site] = bySite.GetValueOrDefault(site.Site) + site.InUseBytes;
            }

            foreach (var (error, count) in _errors)
                _readErrors.WithLabels(SampleReader.ReasonLabel(error)).IncTo(count);
            foreach (var (command, sums) in counters)
            {
                _samples.WithLabels(command).IncTo(sums[SampleLayout.CounterSamples]);
                foreach (var (reason, counter) in DropReasons)
                    _drops.WithLabels(command, reason).IncTo(sums[counter]);
            }
            foreach (string command in _sampledCommands.Where(c => !sampled.ContainsKey(c)).ToList())
            {
                _sampledBytes.WithLabels(command).Remove();
                _sampledCommands.Remove(command);
            }
            foreach (var (command, bytes) in sampled)
            {
                _sampledBytes.WithLabels(command).Set(Math.Round(bytes));
                _sampledCommands.Add(command);
            }
            var present = new HashSet<(string, string)>();
            foreach (var (command, bySite) in sites)
            {
                foreach (var (site, bytes) in bySite.Where(s => s.Value >= 0.5).OrderByDescending(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal).Take(TopSites))
                {
                    _siteLive.WithLabels(command, site).Set(Math.Round(bytes));
                    present.Add((command, site));
                }
            }
            foreach (var stale in _sites.Where(s => !present.Contains(s)).ToList())
                _siteLive.WithLabels(stale.Command, stale.Site).Remove();
            _sites.Clear();
            _sites.UnionWith(present);
        }
    }
}
