using System.Globalization;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Prometheus;
using Collector = Konfiscator.Reader.Collector;

namespace Konfiscator.Tool.Metrics;

/// <summary>The allocator's figures as prometheus-net metrics, in a registry of their own (so the
/// tool's own process metrics never mix in). prometheus-net has no custom collectors, so a
/// before-collect callback runs the <see cref="Collector"/> and sets every series: counters with
/// IncTo (they never go down), gauges with Set, the histogram through a <see cref="HistogramFeeder"/>.
///
/// Series are labelled by <c>command</c>. With per-pid, the figure families carry
/// <c>{command, pid}</c>: one series per live process (removed when it ends) plus, per command,
/// a series with <c>pid=""</c> holding the final counts of its ended processes, so that
/// <c>sum by (command)</c> keeps counting them. (Prometheus drops empty labels, so that series is
/// stored as <c>{command="…"}</c>.)</summary>
internal sealed class KonfiscatorMetrics
{
    private static readonly double[] BucketBounds =
        Enumerable.Range(0, StatsLayout.HistogramBuckets - 1).Select(Figures.BucketUpperBound).ToArray();

    private readonly object _gate = new();
    private readonly Collector _collector;
    private readonly bool _perPid;
    private readonly Dictionary<Figure, Counter> _counters = new();
    private readonly Dictionary<Figure, Gauge> _gauges = new();
    private readonly Dictionary<RatioFigure, Gauge> _ratios = new();
    private readonly bool _keepEndedGauges;
    // The last ended process of each command (for _keepEndedGauges).
    private readonly Dictionary<string, ProcessStats> _lastEnded = new(StringComparer.Ordinal);
    private readonly Histogram _requestSizes;
    private readonly Gauge _processes;
    private readonly Counter _exited;
    private readonly Counter _readErrors;
    private readonly Counter _scanErrors;

    // Series of the figure families, by label values: which incarnation they show (null for a
    // group or for the ended processes of a group) and the histogram feeder behind them.
    private readonly Dictionary<SeriesKey, SeriesState> _series = new();

    private readonly record struct SeriesKey(string Command, string? Pid)
    {
        public string[] Labels(bool perPid) => perPid ? [Command, Pid ?? ""] : [Command];
    }

    private sealed class SeriesState
    {
        public IncarnationKey? Incarnation;
        public HistogramFeeder Feeder = new();
        public bool HasGauges;
    }

    /// <param name="keepEndedGauges">When a command's last process ends, keep serving the gauges
    /// it ended with (run: the final levels stay visible after the program exits) instead of
    /// removing them (exporter: gauges describe live processes).</param>
    public KonfiscatorMetrics(Collector collector, bool perPid, CollectorRegistry? registry = null, SampleMetrics? samples = null, bool keepEndedGauges = false)
    {
        _collector = collector;
        Samples = samples;
        _perPid = perPid;
        _keepEndedGauges = keepEndedGauges;
        Registry = registry ?? Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        string[] labels = perPid ? ["command", "pid"] : ["command"];

        foreach (var figure in Figures.All)
        {
            if (figure.Kind == FigureKind.Counter)
                _counters[figure] = factory.CreateCounter(figure.MetricName, figure.Help, new CounterConfiguration { LabelNames = labels });
            else
                _gauges[figure] = factory.CreateGauge(figure.MetricName, figure.Help, new GaugeConfiguration { LabelNames = labels });
        }
        foreach (var ratio in Figures.Ratios)
            _ratios[ratio] = factory.CreateGauge(ratio.MetricName, ratio.Help, new GaugeConfiguration { LabelNames = labels });
        BuildInfo.Register(factory);
        _requestSizes = factory.CreateHistogram(Figures.Prefix + Figures.RequestSizeName, Figures.RequestSizeHelp,
            new HistogramConfiguration { LabelNames = labels, Buckets = BucketBounds });
        _processes = factory.CreateGauge(Figures.Prefix + Figures.ProcessesName, Figures.ProcessesHelp,
            new GaugeConfiguration { LabelNames = ["command"] });
        _exited = factory.CreateCounter(Figures.Prefix + Figures.ExitedName, Figures.ExitedHelp,
            new CounterConfiguration { LabelNames = ["command"] });
        _readErrors = factory.CreateCounter(Figures.Prefix + Figures.ReadErrorsName, Figures.ReadErrorsHelp,
            new CounterConfiguration { LabelNames = ["reason"] });
        foreach (var error in SegmentReader.AllErrors)
            _readErrors.WithLabels(SegmentReader.ReasonLabel(error)).IncTo(0);
        _scanErrors = factory.CreateCounter(Figures.Prefix + Figures.ScanErrorsName, Figures.ScanErrorsHelp,
            new CounterConfiguration { LabelNames = ["reason"] });
        foreach (string reason in Collector.ScanErrorReasons)
            _scanErrors.WithLabels(reason).IncTo(0);

        Registry.AddBeforeCollectCallback(() => Update());
    }

    public CollectorRegistry Registry { get; }

    /// <summary>The allocation-sample metrics, when this registry serves them.</summary>
    public SampleMetrics? Samples { get; }

    /// <summary>Called with every snapshot (from whichever thread collected it).</summary>
    public event Action<Snapshot>? Collected;

    /// <summary>Collects and brings every series up to date. Runs before each scrape and on the
    /// background timer.</summary>
    public Snapshot Update()
    {
        Snapshot snapshot;
        lock (_gate)
        {
            snapshot = _collector.Collect();
            Apply(snapshot);
            Samples?.Apply(snapshot);
        }
        Collected?.Invoke(snapshot);
        return snapshot;
    }

    private void Apply(Snapshot snapshot)
    {
        foreach (var (error, count) in snapshot.ReadErrors)
            _readErrors.WithLabels(SegmentReader.ReasonLabel(error)).IncTo(count);
        foreach (var (reason, count) in snapshot.ScanErrors)
            _scanErrors.WithLabels(reason).IncTo(count);
        if (_keepEndedGauges)
            foreach (var ended in snapshot.NewlyFolded)
                if (!_lastEnded.TryGetValue(ended.Command, out var known) || known.StartTime <= ended.StartTime)
                    _lastEnded[ended.Command] = ended;

        var present = new HashSet<SeriesKey>();
        foreach (var group in snapshot.Groups)
        {
            _processes.WithLabels(group.Command).Set(group.Live);
            _exited.WithLabels(group.Command).IncTo(group.Exited);
            if (_perPid)
            {
                if (group.Exited == 0) continue;
                // The ended processes of the group: counters only.
                var key = new SeriesKey(group.Command, "");
                present.Add(key);
                var state = Bind(key, incarnation: null);
                string[] labels = key.Labels(true);
                foreach (var (figure, counter) in _counters)
                    counter.WithLabels(labels).IncTo(group.Folded(figure.Counter));
                if (group.Live == 0 && _lastEnded.TryGetValue(group.Command, out var last))
                {
                    SetGauges(labels, c => last[c]);
                    state.HasGauges = true;
                }
                state.Feeder.Feed(_requestSizes.WithLabels(labels), group.FoldedHistogram, group.Folded(StatsLayout.RequestSizeSum));
            }
            else
            {
                var key = new SeriesKey(group.Command, null);
                present.Add(key);
                var state = Bind(key, incarnation: null);
                string[] labels = key.Labels(false);
                foreach (var (figure, counter) in _counters)
                    counter.WithLabels(labels).IncTo(group[figure.Counter]);
                if (group.Live > 0)
                {
                    SetGauges(labels, c => group[c]);
                    state.HasGauges = true;
                }
                else if (_lastEnded.TryGetValue(group.Command, out var last))
                {
                    SetGauges(labels, c => last[c]);
                    state.HasGauges = true;
                }
                else if (state.HasGauges)
                {
                    // Gauges describe live processes; a group with none has no such series.
                    RemoveGauges(labels);
                    state.HasGauges = false;
                }
                state.Feeder.Feed(_requestSizes.WithLabels(labels), group.Histogram, group[StatsLayout.RequestSizeSum]);
            }
        }

        if (_perPid)
        {
            foreach (var process in snapshot.Live)
            {
                var key = new SeriesKey(process.Command, process.Pid.ToString(CultureInfo.InvariantCulture));
                // At most one live image per pid (an older image of the same process is over), but
                // stay safe: the first one listed keeps the series.
                if (!present.Add(key)) continue;
                var state = Bind(key, process.Key);
                string[] labels = key.Labels(true);
                foreach (var (figure, counter) in _counters)
                    counter.WithLabels(labels).IncTo(process[figure.Counter]);
                SetGauges(labels, c => process[c]);
                state.HasGauges = true;
                state.Feeder.Feed(_requestSizes.WithLabels(labels), process.Histogram, process[StatsLayout.RequestSizeSum]);
            }
        }

        foreach (var key in _series.Keys.Where(k => !present.Contains(k)).ToList())
            RemoveSeries(key);
    }

    /// <summary>The state of a series, starting it afresh when it now shows another incarnation
    /// (a reused pid, or the next image after an exec): its counters start again from zero.</summary>
    private SeriesState Bind(SeriesKey key, IncarnationKey? incarnation)
    {
        if (_series.TryGetValue(key, out var state))
        {
            if (state.Incarnation == incarnation) return state;
            RemoveSeries(key);
        }
        _series[key] = state = new SeriesState { Incarnation = incarnation };
        return state;
    }

    private void RemoveSeries(SeriesKey key)
    {
        if (!_series.Remove(key, out var state)) return;
        string[] labels = key.Labels(_perPid);
        foreach (var counter in _counters.Values) counter.WithLabels(labels).Remove();
        if (state.HasGauges) RemoveGauges(labels);
        _requestSizes.WithLabels(labels).Remove();
    }

    private void SetGauges(string[] labels, Func<int, ulong> value)
    {
        foreach (var (figure, gauge) in _gauges)
            gauge.WithLabels(labels).Set(value(figure.Counter));
        foreach (var (ratio, gauge) in _ratios)
            gauge.WithLabels(labels).Set(ratio.Compute(value));
    }

    private void RemoveGauges(string[] labels)
    {
        foreach (var gauge in _gauges.Values) gauge.WithLabels(labels).Remove();
        foreach (var gauge in _ratios.Values) gauge.WithLabels(labels).Remove();
    }
}
