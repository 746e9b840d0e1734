using Konfiscator.Reader;

namespace Konfiscator.Tool.Profiling;

/// <summary>The sample tables of the last few processes this exporter folded in. The collector
/// removes an ended process's file once its counters are folded into the totals, and with it the
/// samples a profile is built from; <c>konfiscator run</c> keeps serving its child's final
/// figures on /metrics, so /debug/pprof/heap should keep explaining them too. The tables (the
/// final one and the peak's) are read just before the file goes and kept in memory, for the
/// newest <see cref="Kept"/> processes.</summary>
internal sealed class EndedProfiles
{
    public const int Kept = 16;

    private sealed record Entry(int Pid, string Command, SampleTable Final, SampleTable? Peak);

    private readonly object _gate = new();
    private readonly LinkedList<Entry> _entries = new();   // oldest first

    /// <summary>Called by the collector for each ended process, before its file is removed. A
    /// file without samples (sampling off) or one that cannot be read leaves nothing.</summary>
    public void Remember(ProcessStats stats, string path)
    {
        var final = SampleReader.Read(path, peak: false);
        if (!final.Ok) return;
        var peak = SampleReader.Read(path, peak: true);
        lock (_gate)
        {
            _entries.AddLast(new Entry(stats.Pid, stats.Command, final.Table!, peak.Table));
            while (_entries.Count > Kept) _entries.RemoveFirst();
        }
    }

    /// <summary>The newest kept process with this pid, or of this command (either may be null,
    /// not both); null when none is kept.</summary>
    public HeapProfile? Find(int? pid, string? command, bool peak, Symbolizer symbolizer)
    {
        Entry? found = null;
        lock (_gate)
        {
            for (var node = _entries.Last; node is not null && found is null; node = node.Previous)
                if ((pid is null || node.Value.Pid == pid) && (command is null || node.Value.Command == command))
                    found = node.Value;
        }
        if (found is null) return null;
        var table = peak ? found.Peak : found.Final;
        return table is null ? null : HeapProfile.Build(table, symbolizer, found.Pid, found.Command, peak);
    }
}
