using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>One incarnation of a process: a pid, its start time and the image (exec generation).
/// A pid alone never identifies a process; pids are reused.</summary>
public readonly record struct IncarnationKey(int Pid, ulong StartTime, uint Generation)
{
    public override string ToString() => $"{Pid}@{StartTime}#{Generation}";
}

/// <summary>The figures of one process image, read from its segment at one moment.</summary>
public sealed class ProcessStats
{
    private readonly ulong[] _values;

    internal ProcessStats(string fileName, int pid, ulong startTime, uint generation, int parentPid, uint flags,
        string command, int arenaCount, ulong[] values)
    {
        FileName = fileName;
        Pid = pid;
        StartTime = startTime;
        Generation = generation;
        ParentPid = parentPid;
        Flags = flags;
        Command = command;
        ArenaCount = arenaCount;
        _values = values;
    }

    /// <summary>Name of the segment file in its directory.</summary>
    public string FileName { get; }
    public int Pid { get; }
    /// <summary>Clock ticks after boot (/proc/PID/stat field 22).</summary>
    public ulong StartTime { get; }
    public uint Generation { get; }
    public int ParentPid { get; }
    public uint Flags { get; }
    /// <summary>The writer marked this image over (the process exec'd a new image).</summary>
    public bool IsFinal => (Flags & StatsLayout.FlagFinal) != 0;
    /// <summary>The command name (/proc/PID/comm of the process when it started): the group.</summary>
    public string Command { get; }
    public int ArenaCount { get; }
    public IncarnationKey Key => new(Pid, StartTime, Generation);

    /// <summary>A figure by its <see cref="StatsLayout"/> counter index, its slots merged by the
    /// schema's rule (<see cref="SlotMerge"/>).</summary>
    public ulong this[int counter] => _values[counter];

    /// <summary>Request-size histogram, not cumulative: bucket i counts requests of at most 2^i
    /// bytes (and more than 2^(i-1)); the last bucket counts requests larger than 2^32.</summary>
    public ReadOnlySpan<ulong> Histogram => _values.AsSpan(StatsLayout.HistogramFirst, StatsLayout.HistogramBuckets);

    public ulong HistogramCount => Figures.HistogramTotal(Histogram);

    /// <summary>Merges raw slots (slot 0 = process, then arenas, shared and thread slots; as
    /// 64-bit words from the end of the header) into one set of figures, each by its schema
    /// row's rule (Shared/StatsSchema.cs).</summary>
    internal static ulong[] Merge(ReadOnlySpan<ulong> slots, int slotCount, int arenaCount)
    {
        // Where slot s starts, in words.
        int At(int s) => (StatsLayout.SlotOffset(arenaCount, s) - StatsLayout.HeaderSize) / 8;
        var merged = new ulong[StatsLayout.CountersPerSlot];
        for (int c = 0; c < StatsLayout.CountersPerSlot; c++)
        {
            var rule = Figures.SchemaOf(c).Merge;
            if (rule == SlotMerge.ProcessSlot)
            {
                merged[c] = slots[At(StatsLayout.ProcessSlot) + c];
                continue;
            }
            ulong v = 0;
            for (int s = 1; s < slotCount; s++)
            {
                ulong x = slots[At(s) + c];
                // Sums wrap like the writer's arithmetic: a thread may free what another thread
                // allocated, so its own BytesInUse goes "negative"; the total is still right.
                v = rule == SlotMerge.Max ? Math.Max(v, x) : unchecked(v + x);
            }
            merged[c] = v;
        }
        // The fast paths' calls are counted per size class; what they add to each figure
        // follows from the counts summed over the slots (StatsLayout.FromFastCounts).
        // Only thread slots have them.
        var counts = new ulong[StatsLayout.FastCounts];
        for (int s = StatsLayout.FirstThreadSlot(arenaCount); s < slotCount; s++)
            for (int k = 0; k < StatsLayout.FastCounts; k++)
                counts[k] = unchecked(counts[k] + slots[At(s) + StatsLayout.FastCountsFirst + k]);
        unsafe
        {
            fixed (ulong* fast = counts)
                for (int c = 0; c < StatsLayout.CountersPerSlot; c++)
                    if (Figures.SchemaOf(c).Scope != FigureScope.Process)
                        merged[c] = unchecked(merged[c] + StatsLayout.FromFastCounts(c, fast));
        }
        // Signed sums (SlotMerge.SignedSum: bytes in use, cached bytes) read as signed numbers; a
        // torn read can make one briefly negative: clamp at 0.
        for (int c = 0; c < StatsLayout.CountersPerSlot; c++)
            if (Figures.SchemaOf(c).Merge == SlotMerge.SignedSum && (long)merged[c] < 0) merged[c] = 0;
        // The library reports a thread's growth to the process-wide peak in quanta (a plain store
        // per call, no atomic), so a small or young process's peak can lag its bytes in use. A
        // peak below the current level is never true: report at least the level.
        merged[StatsLayout.PeakBytesInUse] = Math.Max(merged[StatsLayout.PeakBytesInUse], merged[StatsLayout.BytesInUse]);
        return merged;
    }
}
