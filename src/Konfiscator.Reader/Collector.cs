using Konfiscator.Reader.Interop;
using Konfiscator.Stats;

namespace Konfiscator.Reader;

public sealed class CollectorOptions
{
    /// <summary>Remove the files of ended processes once their final counts are folded in. Only
    /// the holder of the directory's <see cref="ExporterClaim"/> should.</summary>
    public bool RemoveCollected { get; init; } = true;

    public IProcessProbe Probe { get; init; } = ProcFs.Instance;

    /// <summary>Called with an ended incarnation's final figures and its file's path, after they are
    /// folded in and before the file is removed (e.g. to read its sample tables one last time).</summary>
    public Action<ProcessStats, string>? OnFold { get; init; }
}

/// <summary>The figures of one command group at one moment.</summary>
public sealed class GroupFigures
{
    internal GroupFigures(string command, ulong[] values, ulong[] folded, int live, ulong exited, ulong endedPeak, ulong endedInUse)
    {
        Command = command;
        _values = values;
        _folded = folded;
        Live = live;
        Exited = exited;
        EndedPeakBytesInUse = endedPeak;
        EndedInUseBytes = endedInUse;
    }

    /// <summary>The highest peak of bytes in use among the group's ended processes.</summary>
    public ulong EndedPeakBytesInUse { get; }

    /// <summary>Bytes still in use when the group's ended processes ended (never freed), summed.</summary>
    public ulong EndedInUseBytes { get; }

    private readonly ulong[] _values;
    private readonly ulong[] _folded;

    public string Command { get; }

    /// <summary>Live processes of the group now.</summary>
    public int Live { get; }

    /// <summary>Process images of the group that ended and were folded in.</summary>
    public ulong Exited { get; }

    /// <summary>A figure by counter index. Counters (and the histogram): the final values of the
    /// group's ended processes plus the current values of its live ones. Gauges: over the live
    /// processes only (summed, or the maximum, see <see cref="Figure.Aggregation"/>).</summary>
    public ulong this[int counter] => _values[counter];

    /// <summary>Counters of the ended processes only (gauges are 0 here).</summary>
    public ulong Folded(int counter) => _folded[counter];

    public ReadOnlySpan<ulong> Histogram => _values.AsSpan(StatsLayout.HistogramFirst, StatsLayout.HistogramBuckets);

    public ulong HistogramCount => Figures.HistogramTotal(Histogram);

    public ReadOnlySpan<ulong> FoldedHistogram => _folded.AsSpan(StatsLayout.HistogramFirst, StatsLayout.HistogramBuckets);
}

/// <summary>What a collection saw.</summary>
public sealed class Snapshot
{
    public required IReadOnlyList<ProcessStats> Live { get; init; }
    /// <summary>Every command group seen since the collector started, ordered by command.</summary>
    public required IReadOnlyList<GroupFigures> Groups { get; init; }
    /// <summary>Cumulative count of unreadable files, by reason (every reason present).</summary>
    public required IReadOnlyDictionary<ReadError, ulong> ReadErrors { get; init; }
    /// <summary>Unreadable files first seen in this collection.</summary>
    public required IReadOnlyList<BadFile> NewBadFiles { get; init; }
    /// <summary>Incarnations folded in by this collection.</summary>
    public required IReadOnlyList<ProcessStats> NewlyFolded { get; init; }
    public string? DirectoryError { get; init; }
    /// <summary>This collection found the directory untrusted (a link, another user's, open to others).</summary>
    public bool DirectoryUntrusted { get; init; }
    /// <summary>Cumulative count of collections that could not read the directory, by reason
    /// (<see cref="Collector.ScanErrorReasons"/>, every reason present).</summary>
    public required IReadOnlyDictionary<string, ulong> ScanErrors { get; init; }

    public GroupFigures? Group(string command) => Groups.FirstOrDefault(g => g.Command == command);
}

/// <summary>Keeps per-command totals over a stats directory. Each <see cref="Collect"/> reads every
/// segment; the final counts of incarnations that are over are folded into their command's totals
/// (once: an incarnation is remembered until its file is gone) and their files removed, so a
/// group's counters never go down and include processes that came and went between two
/// collections. Thread-safe: the background timer and scrapes may call it at the same time.</summary>
public sealed class Collector
{
    private readonly object _gate = new();
    private readonly CollectorOptions _options;
    private readonly Dictionary<string, GroupState> _groups = new(StringComparer.Ordinal);
    private Dictionary<IncarnationKey, ProcessStats> _live = new();
    private readonly Dictionary<IncarnationKey, string> _folded = new();
    private readonly HashSet<FileIdentity> _seenBad = new();
    private readonly Dictionary<ReadError, ulong> _errors = SegmentReader.AllErrors.ToDictionary(e => e, _ => 0UL);
    private readonly Dictionary<string, ulong> _scanErrors = ScanErrorReasons.ToDictionary(r => r, _ => 0UL);

    /// <summary>Why a collection could not read the directory: it was refused (untrusted), or it
    /// could not be opened or listed (unreadable).</summary>
    public static readonly IReadOnlyList<string> ScanErrorReasons = ["untrusted_directory", "unreadable_directory"];

    private sealed class GroupState
    {
        public readonly ulong[] Folded = new ulong[StatsLayout.CountersPerSlot];
        public ulong Exited;
        public ulong EndedPeak;
        public ulong EndedInUse;
    }

    public Collector(string directory, CollectorOptions? options = null)
    {
        Directory = directory;
        _options = options ?? new CollectorOptions();
    }

    public string Directory { get; }

    public Snapshot Collect()
    {
        lock (_gate)
        {
            var scan = DirectoryScan.Run(Directory, _options.Probe);
            if (scan.DirectoryError is not null)
            {
                // Nothing was read, so nothing is known to have changed: no process is taken for
                // ended, nothing forgotten (a process seen again later is neither counted twice
                // nor its file removed). The figures stay as last seen.
                _scanErrors[scan.Untrusted ? "untrusted_directory" : "unreadable_directory"]++;
                return BuildSnapshot([], [], scan);
            }
            var newBad = new List<BadFile>();
            foreach (var bad in scan.BadFiles)
            {
                if (_seenBad.Add(bad.Identity))
                {
                    _errors[bad.Error]++;
                    newBad.Add(bad);
                }
            }

            var nowLive = new Dictionary<IncarnationKey, ProcessStats>();
            var newlyFolded = new List<ProcessStats>();
            foreach (var segment in scan.Segments)
            {
                var stats = segment.Stats;
                var key = stats.Key;
                if (_folded.ContainsKey(key))
                {
                    // Kept while its process ran (below), or an earlier removal failed: try again.
                    RemoveUnlessRunning(segment, segment.Identity);
                    continue;
                }
                if (segment.Live)
                {
                    nowLive[key] = stats;
                    continue;
                }
                // Over: nothing writes this file any more. Read it again, because the process may
                // have counted more between the first read and its end.
                var again = SegmentReader.Read(Path.Combine(Directory, stats.FileName));
                var final = again.Ok && again.Stats!.Key == key ? again.Stats! : stats;
                Fold(final);
                newlyFolded.Add(final);
                _folded[key] = stats.FileName;
                _options.OnFold?.Invoke(final, Path.Combine(Directory, stats.FileName));
                RemoveUnlessRunning(segment, again.Ok ? again.Identity : segment.Identity);
            }

            // Live last time, and now neither live nor over: its file vanished or became
            // unreadable. Keep what was last seen so the group's counters do not go down.
            foreach (var (key, last) in _live)
            {
                if (nowLive.ContainsKey(key) || _folded.ContainsKey(key)) continue;
                Fold(last);
                newlyFolded.Add(last);
                _folded[key] = last.FileName;
            }
            _live = nowLive;

            // Forget what is gone from the directory, so memory stays bounded.
            foreach (var (key, name) in _folded.ToList())
                if (!scan.Names.Contains(name)) _folded.Remove(key);
            _seenBad.RemoveWhere(id => !scan.Names.Contains(id.Name));

            return BuildSnapshot(newBad, newlyFolded, scan);
        }
    }

    private void Fold(ProcessStats stats)
    {
        var group = GetGroup(stats.Command);
        for (int c = 0; c < StatsLayout.CountersPerSlot; c++)
            if (Figures.IsMonotonic(c))
                group.Folded[c] = unchecked(group.Folded[c] + stats[c]);
        group.Exited++;
        group.EndedPeak = Math.Max(group.EndedPeak, stats[StatsLayout.PeakBytesInUse]);
        group.EndedInUse = unchecked(group.EndedInUse + stats[StatsLayout.BytesInUse]);
    }

    private GroupState GetGroup(string command)
    {
        if (!_groups.TryGetValue(command, out var group))
            _groups[command] = group = new GroupState();
        return group;
    }

    /// <summary>Removes the file of an image that is over, unless its process still runs (an
    /// image replaced by exec): its name must stay taken until the process ends, or the process's
    /// next image would take that lower name and pass for an older image (docs/metrics.md,
    /// "Incarnations"). Its figures are folded once all the same (it stays in _folded).</summary>
    private void RemoveUnlessRunning(ScannedSegment segment, FileIdentity identity)
    {
        if (segment.ProcessRunning) return;
        Remove(segment.Stats.FileName, identity);
    }

    private void Remove(string name, FileIdentity identity)
    {
        if (!_options.RemoveCollected) return;
        string path = Path.Combine(Directory, name);
        // Only the file that was read: if the name now points at another file, leave it.
        if (Libc.LStat(path, out var st) != 0 || !st.IsRegular || st.Inode != identity.Inode) return;
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Stays in _folded, so it is not counted twice; retried at the next collection.
        }
    }

    private Snapshot BuildSnapshot(List<BadFile> newBad, List<ProcessStats> newlyFolded, DirectoryScan scan)
    {
        foreach (var stats in _live.Values) GetGroup(stats.Command);
        var liveByCommand = _live.Values.ToLookup(s => s.Command, StringComparer.Ordinal);
        var groups = new List<GroupFigures>(_groups.Count);
        foreach (var (command, state) in _groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var values = (ulong[])state.Folded.Clone();
            int live = 0;
            foreach (var s in liveByCommand[command])
            {
                live++;
                for (int c = 0; c < StatsLayout.CountersPerSlot; c++)
                {
                    if (!MaxCounter[c])
                        values[c] = unchecked(values[c] + s[c]);
                    else
                        values[c] = Math.Max(values[c], s[c]);
                }
            }
            groups.Add(new GroupFigures(command, values, (ulong[])state.Folded.Clone(), live, state.Exited, state.EndedPeak, state.EndedInUse));
        }
        return new Snapshot
        {
            Live = _live.Values.OrderBy(s => s.Command, StringComparer.Ordinal).ThenBy(s => s.Pid).ThenBy(s => s.Generation).ToList(),
            Groups = groups,
            ReadErrors = new Dictionary<ReadError, ulong>(_errors),
            NewBadFiles = newBad,
            NewlyFolded = newlyFolded,
            DirectoryError = scan.DirectoryError,
            DirectoryUntrusted = scan.Untrusted,
            ScanErrors = new Dictionary<string, ulong>(_scanErrors),
        };
    }

    /// <summary>Counters a group takes the largest of (a peak), rather than the sum (the schema's
    /// <see cref="GroupAggregation"/>); looked up once here, not for every counter of every process.</summary>
    private static readonly bool[] MaxCounter =
        Enumerable.Range(0, StatsLayout.CountersPerSlot).Select(c => Figures.SchemaOf(c).Aggregation == GroupAggregation.Max).ToArray();
}
