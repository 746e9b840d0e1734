using System.Buffers.Binary;
using System.Text;
using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Tests.Shared;

/// <summary>Writes a segment file byte by byte from <see cref="StatsLayout"/>, the way the
/// writer in libkonfiscator.so lays it out, with knobs to break it.</summary>
internal sealed class SegmentBuilder
{
    private readonly Dictionary<(int Slot, int Counter), ulong> _values = new();

    public int Pid { get; set; } = 4242;
    public ulong StartTime { get; set; } = 1234;
    public uint Generation { get; set; }
    public int ParentPid { get; set; } = 1;
    public uint Flags { get; set; }
    public string Command { get; set; } = "synthetic";
    public int Arenas { get; set; } = 2;
    public int ThreadSlots { get; set; } = 3;
    public int ThreadSlotsUsed { get; set; } = 2;
    /// <summary>Leave the arena/thread split at zero, as an older writer does.</summary>
    public bool OmitSlotSplit { get; set; }

    // Overrides for hostile files.
    public ulong Magic { get; set; } = StatsLayout.Magic;
    public uint Version { get; set; } = StatsLayout.Version;
    public uint HeaderSize { get; set; } = StatsLayout.HeaderSize;
    public uint SlotSize { get; set; } = StatsLayout.SlotSize;
    public uint? SlotCountOverride { get; set; }

    public int SlotCount => (int)(SlotCountOverride ?? (uint)StatsLayout.SlotCount(Arenas, ThreadSlots));

    public static SegmentBuilder For(Sleeper process, string command = "synthetic") =>
        new() { Pid = process.Pid, StartTime = process.StartTime, Command = command };

    public static SegmentBuilder ForSelf(string command = "synthetic") =>
        new() { Pid = Environment.ProcessId, StartTime = ProcFs.SelfStartTime(), Command = command };

    public SegmentBuilder Set(int slot, int counter, ulong value)
    {
        _values[(slot, counter)] = value;
        return this;
    }

    public ulong Get(int slot, int counter) => _values.GetValueOrDefault((slot, counter));

    public SegmentBuilder Process(int counter, ulong value) => Set(StatsLayout.ProcessSlot, counter, value);
    public SegmentBuilder Arena(int arena, int counter, ulong value) => Set(StatsLayout.FirstArenaSlot + arena, counter, value);
    public SegmentBuilder Shared(int counter, ulong value) => Set(StatsLayout.SharedSlot(Arenas), counter, value);
    public SegmentBuilder Thread(int thread, int counter, ulong value) => Set(StatsLayout.FirstThreadSlot(Arenas) + thread, counter, value);

    /// <summary>Records <paramref name="count"/> requests of <paramref name="size"/> bytes in a
    /// thread slot: the call counter, the histogram bucket and the size sum.</summary>
    public SegmentBuilder Requests(int thread, int callCounter, ulong size, ulong count)
    {
        int slot = StatsLayout.FirstThreadSlot(Arenas) + thread;
        Set(slot, callCounter, Get(slot, callCounter) + count);
        int bucket = StatsLayout.HistogramFirst + StatsLayout.HistogramBucket(size);
        Set(slot, bucket, Get(slot, bucket) + count);
        Set(slot, StatsLayout.RequestSizeSum, Get(slot, StatsLayout.RequestSizeSum) + size * count);
        return this;
    }

    public string FileName => SegmentFileName.Format(Pid, Generation);

    /// <summary>The arena count that places the slots: a segment without the slot split has
    /// no thread slots (all slots but the process slot read as arenas).</summary>
    private int LayoutArenas => OmitSlotSplit ? SlotCount - 1 : Arenas;

    public byte[] Build()
    {
        int size = Math.Max(StatsLayout.SlotOffset(LayoutArenas, SlotCount), StatsLayout.HeaderSize + SlotCount * StatsLayout.SlotSize);
        var bytes = new byte[size];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(span[StatsLayout.OffMagic..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffVersion..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffHeaderSize..], HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffSlotSize..], SlotSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffSlotCount..], (uint)SlotCount);
        BinaryPrimitives.WriteInt32LittleEndian(span[StatsLayout.OffPid..], Pid);
        BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffFlags..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(span[StatsLayout.OffStartTime..], StartTime);
        BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffExecGeneration..], Generation);
        BinaryPrimitives.WriteInt32LittleEndian(span[StatsLayout.OffParentPid..], ParentPid);
        if (!OmitSlotSplit)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffArenaSlots..], (uint)Arenas);
            BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffThreadSlots..], (uint)ThreadSlots);
            BinaryPrimitives.WriteUInt32LittleEndian(span[StatsLayout.OffThreadSlotsUsed..], (uint)ThreadSlotsUsed);
        }
        var command = Encoding.UTF8.GetBytes(Command);
        command.AsSpan(0, Math.Min(command.Length, StatsLayout.CommandBytes - 1)).CopyTo(span[StatsLayout.OffCommand..]);
        foreach (var ((slot, counter), value) in _values)
            BinaryPrimitives.WriteUInt64LittleEndian(span[StatsLayout.CounterOffset(LayoutArenas, slot, counter)..], value);
        return bytes;
    }

    /// <summary>Writes the file into <paramref name="directory"/> atomically (a temporary name,
    /// then rename), so a collector running meanwhile never sees it half written.</summary>
    public string WriteTo(string directory, string? name = null)
    {
        string path = Path.Combine(directory, name ?? FileName);
        string temp = Path.Combine(directory, $".tmp-{Guid.NewGuid():N}");
        File.WriteAllBytes(temp, Build());
        File.Move(temp, path, overwrite: true);
        return path;
    }
}
