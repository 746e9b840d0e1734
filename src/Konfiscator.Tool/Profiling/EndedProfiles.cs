using Konfiscator.Reader;

namespace Konfiscator.Tool.Profiling;

/// <summary>The sample tables of processes this exporter folded in: the newest process of each
/// command, for the <see cref="Kept"/> commands folded most recently. The collector removes an
/// ended process's file once its counters are folded into the totals, and with it the samples a
/// profile is built from; <c>konfiscator run</c> keeps serving its child's final figures on
/// /metrics, so /debug/pprof/heap should keep explaining them too. The tables (the final one and
/// the peak's) are read just before the file goes. One per command, not the last few processes:
/// a program run through a shell script ends together with dozens of short helpers (pyenv's shims
/// start 80), which would push it out of a list of the last few.</summary>
internal sealed class EndedProfiles
{
    public const int Kept = 64;

    private sealed record Entry(int Pid, ulong StartTime, uint Generation, string Command, SampleTable Final, SampleTable? Peak);

    private readonly object _gate = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _byCommand = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _order = new();   // least recently folded command first

    /// <summary>Called by the collector for each ended process, before its file is removed. A
    /// file without samples (sampling off) or one that cannot be read leaves nothing, and an
    /// older process of a command does not replace a newer one.</summary>
    public void Remember(ProcessStats stats, string path)
    {
        var final = SampleReader.Read(path, peak: false);
        if (!final.Ok) return;
        var peak = SampleReader.Read(path, peak: true);
        var entry = new Entry(stats.Pid, stats.StartTime, stats.Generation, stats.Command, final.Table!, peak.Table);
        lock (_gate)
        {
            if (_byCommand.TryGetValue(stats.Command, out var old))
            {
                // Newer: started later, or the same process after a later exec (a script that
                // execs the program it names has the program's name too).
                if ((old.Value.StartTime, old.Value.Generation).CompareTo((stats.StartTime, stats.Generation)) > 0) return;
                _order.Remove(old);
            }
            _byCommand[stats.Command] = _order.AddLast(entry);
            while (_order.Count > Kept)
            {
                _byCommand.Remove(_order.First!.Value.Command);
                _order.RemoveFirst();
            }
        }
    }

    /// <summary>The kept process of this command, or with this pid (either may be null, not both;
    /// both must match when both are given); null when none is kept.</summary>
    public HeapProfile? Find(int? pid, string? command, bool peak, Symbolizer symbolizer)
    {
        Entry? found = null;
        lock (_gate)
        {
            if (command is not null)
            {
                if (_byCommand.TryGetValue(command, out var node) && (pid is null || node.Value.Pid == pid)) found = node.Value;
            }
            else
            {
                found = _order.LastOrDefault(e => e.Pid == pid);
            }
        }
        if (found is null) return null;
        var table = peak ? found.Peak : found.Final;
        return table is null ? null : HeapProfile.Build(table, symbolizer, found.Pid, found.Command, peak);
    }
}
