using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Views;

namespace Konfiscator.Tool.Web;

/// <summary>The last minutes of each live process's figures, kept in the exporter's memory for the
/// web page's charts. Bounded: at most <see cref="MaxProcesses"/> processes, <see cref="Capacity"/>
/// samples each (one per collection, at least <see cref="MinSpacing"/> apart); a process that is gone
/// is forgotten a minute later.</summary>
internal sealed class History
{
    public const int Capacity = 600;              // ten minutes at one sample a second
    public const int MaxProcesses = 512;
    public static readonly TimeSpan MinSpacing = TimeSpan.FromMilliseconds(900);
    private static readonly TimeSpan ForgetAfter = TimeSpan.FromMinutes(1);

    public readonly record struct Sample(double Seconds, ulong InUse, ulong Peak, ulong Calls, ulong Allocated);

    public sealed class Series(ProcessStats first)
    {
        private readonly Sample[] _ring = new Sample[Capacity];
        private int _next, _count;
        public ProcessStats Latest { get; set; } = first;
        public DateTime LastSeen { get; set; }

        public void Add(Sample s)
        {
            _ring[_next] = s;
            _next = (_next + 1) % Capacity;
            if (_count < Capacity) _count++;
        }

        public Sample[] Samples()
        {
            var list = new Sample[_count];
            for (int i = 0; i < _count; i++) list[i] = _ring[(_next - _count + i + Capacity) % Capacity];
            return list;
        }
    }

    private readonly Dictionary<IncarnationKey, Series> _series = new();
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private TimeSpan? _lastSample;
    private IReadOnlyList<ProcessStats> _live = [];
    private readonly object _gate = new();

    /// <summary>Seconds since the exporter started (the charts' time axis).</summary>
    public double Now => _clock.Elapsed.TotalSeconds;

    public void Record(Snapshot snapshot)
    {
        lock (_gate)
        {
            _live = snapshot.Live;
            var now = _clock.Elapsed;
            bool sample = _lastSample is not { } last || now - last >= MinSpacing;
            if (sample) _lastSample = now;
            var wall = DateTime.UtcNow;
            foreach (var p in snapshot.Live)
            {
                if (!_series.TryGetValue(p.Key, out var series))
                {
                    if (_series.Count >= MaxProcesses) continue;
                    _series[p.Key] = series = new Series(p);
                    sample = true; // a new process gets its first point at once
                }
                series.Latest = p;
                series.LastSeen = wall;
                if (sample)
                    series.Add(new Sample(now.TotalSeconds, p[StatsLayout.BytesInUse], p[StatsLayout.PeakBytesInUse],
                        Rates.Calls(p), p[StatsLayout.BytesAllocated]));
            }
            foreach (var key in _series.Where(kv => wall - kv.Value.LastSeen > ForgetAfter).Select(kv => kv.Key).ToList())
                _series.Remove(key);
        }
    }

    public IReadOnlyList<ProcessStats> Live
    {
        get { lock (_gate) return _live; }
    }

    /// <summary>The live process with this pid, its samples (oldest first).</summary>
    public (ProcessStats Stats, Sample[] Samples)? Find(int pid)
    {
        lock (_gate)
        {
            var p = _live.FirstOrDefault(s => s.Pid == pid);
            if (p is null) return null;
            return (p, _series.TryGetValue(p.Key, out var series) ? series.Samples() : []);
        }
    }

    /// <summary>Calls per second over the last two samples of a process (0 with fewer).</summary>
    public double CallRate(ProcessStats p)
    {
        lock (_gate)
        {
            if (!_series.TryGetValue(p.Key, out var series)) return 0;
            var s = series.Samples();
            if (s.Length < 2) return 0;
            var (a, b) = (s[^2], s[^1]);
            return Rates.PerSecond(a.Calls, b.Calls, b.Seconds - a.Seconds);
        }
    }
}
