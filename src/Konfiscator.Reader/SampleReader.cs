using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Konfiscator.Reader.Interop;
using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>Why a segment's sample tables could not be read (the <c>reason</c> label of
/// <c>konfiscator_exporter_sample_read_errors_total</c>).</summary>
public enum SampleReadError
{
    None = 0,
    /// <summary>The segment has no sample region (an older writer), or it is not filled in yet.</summary>
    Absent,
    Truncated,
    BadMagic,
    BadVersion,
    BadLayout,
    /// <summary>The peak table was being copied at every try.</summary>
    Busy,
    Io,
}

/// <summary>A live sampled block: its payload address, requested size, time and stack.</summary>
public readonly record struct SampleEntry(ulong Address, ulong Size, ulong TimeNs, uint StackId, uint Thread);

/// <summary>An interned call stack (return addresses, innermost first) with its cumulative counts.</summary>
public sealed record SampledStack(uint Id, ulong[] Frames, ulong AllocSamples, ulong AllocBytes, double AllocObjects);

/// <summary>A mapped object as the library recorded it: file address = address - <see cref="LoadBias"/>.</summary>
public sealed record ModuleMapping(ulong LoadBias, ulong Start, ulong End, string Path);

/// <summary>A process's sample tables at one moment.</summary>
public sealed class SampleTable
{
    public required uint State { get; init; }
    public required ulong MeanBytes { get; init; }
    /// <summary>Live samples (or, for a peak read, the samples live at the peak).</summary>
    public required IReadOnlyList<SampleEntry> Samples { get; init; }
    public required IReadOnlyDictionary<uint, SampledStack> Stacks { get; init; }
    public required IReadOnlyList<ModuleMapping> Modules { get; init; }
    /// <summary>The region header's counters, indexed by SampleLayout.Counter*.</summary>
    public required ulong[] Counters { get; init; }
    /// <summary>For a peak read: bytes in use when the peak table was taken (0: none taken yet).</summary>
    public ulong PeakBytes { get; init; }
    public ulong PeakTimeNs { get; init; }
    /// <summary>Entries skipped because a writer was changing them (seen again next time).</summary>
    public int TornEntries { get; init; }
    /// <summary>Entries skipped because they make no sense (a bad stack id, depth, size).</summary>
    public int GarbageEntries { get; init; }

    public bool SamplingOn => State == SampleLayout.StateOn;

    public string StateText => State switch
    {
        SampleLayout.StateOn => "on",
        SampleLayout.StateOffBySetting => $"off ({StatsSchema.SampleBytesVariable}=0)",
        SampleLayout.StateNoUnwinder => "off (no unwinder: _Unwind_Backtrace not found)",
        SampleLayout.StateNotStarted => "not started (the library's initializer has not run)",
        SampleLayout.StateUnpublished => "on, but no longer published (no space in the stats directory): these tables are stale",
        _ => $"unknown state {State}",
    };

    /// <summary>Bytes a sample of <paramref name="size"/> requested bytes stands for:
    /// size / (1 - exp(-size/mean)), the inverse of its probability of being sampled.</summary>
    public static double WeightBytes(ulong size, ulong mean)
    {
        if (mean == 0) return size;
        if (size == 0) return mean;
        double x = (double)size / mean;
        return size / -double.ExpM1(-x);
    }

    public double Weight(SampleEntry e) => WeightBytes(e.Size, MeanBytes);
}

public readonly record struct SampleReadResult(SampleTable? Table, SampleReadError Error, string Detail)
{
    public bool Ok => Table is not null;
}

/// <summary>Reads the sample tables of a segment file (layout: Shared/SampleLayout.cs) with pread,
/// never blocking or writing; everything is validated before it is trusted. A table that does not
/// fit is skipped whole with a reason; single entries that are torn or garbage are skipped and
/// counted in the result.</summary>
public static class SampleReader
{
    public static string ReasonLabel(SampleReadError error) => error switch
    {
        SampleReadError.Absent => "absent",
        SampleReadError.Truncated => "truncated",
        SampleReadError.BadMagic => "bad_magic",
        SampleReadError.BadVersion => "bad_version",
        SampleReadError.BadLayout => "bad_layout",
        SampleReadError.Busy => "busy",
        SampleReadError.Io => "io",
        _ => "none",
    };

    public static IEnumerable<SampleReadError> AllErrors =>
        Enum.GetValues<SampleReadError>().Where(e => e is not SampleReadError.None and not SampleReadError.Absent);

    /// <summary>Only the header's state, mean and counters (no tables): cheap, for folding an ended
    /// process's counters into its group.</summary>
    public static SampleReadResult ReadCounters(string path) => Read(path, peak: false, headerOnly: true);

    public static SampleReadResult Read(string path, bool peak = false) => Read(path, peak, headerOnly: false);

    private static SampleReadResult Read(string path, bool peak, bool headerOnly)
    {
        int fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0)
            return Fail(SampleReadError.Io, $"cannot open: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        try
        {
            int err = Libc.StatFd(fd, out var st);
            if (err != 0 || !st.IsRegular) return Fail(SampleReadError.Io, "not a readable regular file");
            return ReadOpen(fd, (long)st.Size, peak, headerOnly);
        }
        finally
        {
            Libc.Close(fd);
        }
    }

    private static SampleReadResult ReadOpen(int fd, long fileSize, bool peak, bool headerOnly)
    {
        var segment = new byte[StatsLayout.HeaderSize];
        if (!ReadAt(fd, segment, 0)) return Fail(SampleReadError.Truncated, "segment header cut short");
        if (U64(segment, StatsLayout.OffMagic) != StatsLayout.Magic) return Fail(SampleReadError.BadMagic, "not a segment");
        ulong offset = U64(segment, SampleLayout.SegOffRegionOffset);
        ulong bytes = U64(segment, SampleLayout.SegOffRegionBytes);
        uint version = U32(segment, SampleLayout.SegOffRegionVersion);
        if (offset == 0 && bytes == 0) return Fail(SampleReadError.Absent, "the segment has no sample tables");
        if (version != SampleLayout.Version)
            return Fail(SampleReadError.BadVersion, $"sample layout version {version}, this reader knows {SampleLayout.Version}");
        if (offset < StatsLayout.HeaderSize || offset % 8 != 0 || bytes < (ulong)SampleLayout.RegionBytes || offset > long.MaxValue / 2 || bytes > int.MaxValue)
            return Fail(SampleReadError.BadLayout, $"sample region at {offset}, {bytes} bytes");
        if ((ulong)fileSize < offset + bytes)
            return Fail(SampleReadError.Truncated, $"{fileSize} bytes, the sample region ends at {offset + bytes}");
        long region = (long)offset;

        var header = new byte[SampleLayout.HeaderBytes];
        if (!ReadAt(fd, header, region)) return Fail(SampleReadError.Truncated, "sample header cut short");
        ulong magic = U64(header, SampleLayout.OffMagic);
        if (magic == 0) return Fail(SampleReadError.Absent, "the sample tables are not filled in yet");
        if (magic != SampleLayout.Magic) return Fail(SampleReadError.BadMagic, $"bad sample magic 0x{magic:x16}");
        if (U32(header, SampleLayout.OffVersion) != SampleLayout.Version)
            return Fail(SampleReadError.BadVersion, $"sample table version {U32(header, SampleLayout.OffVersion)}");
        if (U32(header, SampleLayout.OffHeaderBytes) != SampleLayout.HeaderBytes
            || U32(header, SampleLayout.OffSampleCapacity) != SampleLayout.SampleCapacity
            || U32(header, SampleLayout.OffSampleEntryBytes) != SampleLayout.SampleEntryBytes
            || U32(header, SampleLayout.OffStackCapacity) != SampleLayout.StackCapacity
            || U32(header, SampleLayout.OffStackEntryBytes) != SampleLayout.StackEntryBytes
            || U32(header, SampleLayout.OffMaxFrames) != SampleLayout.MaxFrames
            || U32(header, SampleLayout.OffModuleCapacity) != SampleLayout.ModuleCapacity
            || U32(header, SampleLayout.OffModuleEntryBytes) != SampleLayout.ModuleEntryBytes)
            return Fail(SampleReadError.BadLayout, "sample table sizes differ from this reader's");
        uint highWater = U32(header, SampleLayout.OffSamplesHighWater);
        uint stacksUsed = U32(header, SampleLayout.OffStacksUsed);
        uint modulesUsed = U32(header, SampleLayout.OffModulesUsed);
        uint peakHighWater = U32(header, SampleLayout.OffPeakHighWater);
        if (highWater > SampleLayout.SampleCapacity || stacksUsed > SampleLayout.StackCapacity
            || modulesUsed > SampleLayout.ModuleCapacity || peakHighWater > SampleLayout.SampleCapacity)
            return Fail(SampleReadError.BadLayout, $"used counts out of range ({highWater} samples, {stacksUsed} stacks, {modulesUsed} modules)");
        ulong mean = U64(header, SampleLayout.OffMeanBytes);
        var counters = new ulong[SampleLayout.CounterCount];
        for (int i = 0; i < counters.Length; i++) counters[i] = U64(header, SampleLayout.OffCounters + 8 * i);

        int torn = 0, garbage = 0;
        if (headerOnly)
            return new SampleReadResult(new SampleTable
            {
                State = U32(header, SampleLayout.OffState), MeanBytes = mean, Samples = [], Stacks = new Dictionary<uint, SampledStack>(),
                Modules = [], Counters = counters,
            }, SampleReadError.None, "");

        // Stacks first: samples refer to them.
        var stackBytes = new byte[stacksUsed * SampleLayout.StackEntryBytes];
        if (!ReadAt(fd, stackBytes, region + SampleLayout.StacksOffset)) return Fail(SampleReadError.Truncated, "stack table cut short");
        var stacks = new Dictionary<uint, SampledStack>();
        for (uint id = 0; id < stacksUsed; id++)
        {
            var e = stackBytes.AsSpan((int)id * SampleLayout.StackEntryBytes, SampleLayout.StackEntryBytes);
            if (!Consistent(e, SampleLayout.StackSeqEnd)) { torn++; continue; }
            uint depth = U32(e, SampleLayout.StackDepth);
            if (depth == 0 || depth > SampleLayout.MaxFrames) { garbage++; continue; }
            var frames = new ulong[depth];
            for (int f = 0; f < depth; f++) frames[f] = U64(e, SampleLayout.StackFrames + 8 * f);
            stacks[id] = new SampledStack(id, frames, U64(e, SampleLayout.StackAllocSamples), U64(e, SampleLayout.StackAllocBytes),
                U64(e, SampleLayout.StackAllocObjects) / (double)SampleLayout.ObjectsFixedPoint);
        }

        var modules = new List<ModuleMapping>();
        var moduleBytes = new byte[modulesUsed * SampleLayout.ModuleEntryBytes];
        if (!ReadAt(fd, moduleBytes, region + SampleLayout.ModulesOffset)) return Fail(SampleReadError.Truncated, "module table cut short");
        for (int i = 0; i < modulesUsed; i++)
        {
            var e = moduleBytes.AsSpan(i * SampleLayout.ModuleEntryBytes, SampleLayout.ModuleEntryBytes);
            if (!Consistent(e, SampleLayout.ModuleSeqEnd)) { torn++; continue; }
            uint length = U32(e, SampleLayout.ModulePathLength);
            ulong start = U64(e, SampleLayout.ModuleStart), end = U64(e, SampleLayout.ModuleEnd);
            if (length >= SampleLayout.PathBytes || end <= start) { garbage++; continue; }
            string path = Encoding.UTF8.GetString(e.Slice(SampleLayout.ModulePath, (int)length));
            modules.Add(new ModuleMapping(U64(e, SampleLayout.ModuleBase), start, end, path));
        }

        List<SampleEntry> samples;
        ulong peakBytes = 0, peakTime = 0;
        if (!peak)
        {
            var sampleBytes = new byte[highWater * SampleLayout.SampleEntryBytes];
            if (!ReadAt(fd, sampleBytes, region + SampleLayout.SamplesOffset)) return Fail(SampleReadError.Truncated, "sample table cut short");
            samples = ParseSamples(sampleBytes, highWater, stacksUsed, ref torn, ref garbage);
        }
        else
        {
            samples = [];
            bool stable = false;
            for (int attempt = 0; attempt < 5 && !stable; attempt++)
            {
                if (attempt > 0)
                {
                    Thread.Sleep(2);
                    if (!ReadAt(fd, header, region)) return Fail(SampleReadError.Truncated, "sample header cut short");
                }
                ulong seq = U64(header, SampleLayout.OffPeakSeq);
                uint count = Math.Min(U32(header, SampleLayout.OffPeakHighWater), (uint)SampleLayout.SampleCapacity);
                peakBytes = U64(header, SampleLayout.OffPeakBytes);
                peakTime = U64(header, SampleLayout.OffPeakTimeNs);
                if (seq % 2 != 0) continue;
                var peakTable = new byte[count * SampleLayout.SampleEntryBytes];
                if (!ReadAt(fd, peakTable, region + SampleLayout.PeakOffset)) return Fail(SampleReadError.Truncated, "peak table cut short");
                var after = new byte[8];
                if (!ReadAt(fd, after, region + SampleLayout.OffPeakSeq)) return Fail(SampleReadError.Truncated, "sample header cut short");
                if (U64(after, 0) != seq) continue;
                int peakTorn = 0, peakGarbage = 0;
                samples = ParseSamples(peakTable, count, stacksUsed, ref peakTorn, ref peakGarbage);
                torn += peakTorn;
                garbage += peakGarbage;
                stable = true;
            }
            if (!stable) return Fail(SampleReadError.Busy, "the peak table was being copied");
        }

        return new SampleReadResult(new SampleTable
        {
            State = U32(header, SampleLayout.OffState),
            MeanBytes = mean,
            Samples = samples,
            Stacks = stacks,
            Modules = modules,
            Counters = counters,
            PeakBytes = peakBytes,
            PeakTimeNs = peakTime,
            TornEntries = torn,
            GarbageEntries = garbage,
        }, SampleReadError.None, "");
    }

    private static List<SampleEntry> ParseSamples(byte[] bytes, uint count, uint stacksUsed, ref int torn, ref int garbage)
    {
        var samples = new List<SampleEntry>();
        for (int i = 0; i < count; i++)
        {
            var e = bytes.AsSpan(i * SampleLayout.SampleEntryBytes, SampleLayout.SampleEntryBytes);
            if (!Consistent(e, SampleLayout.SampleSeqEnd)) { torn++; continue; }
            ulong address = U64(e, SampleLayout.SampleAddress);
            if (address == 0) continue;
            ulong size = U64(e, SampleLayout.SampleSize);
            uint stack = U32(e, SampleLayout.SampleStack);
            if (size == 0 || size > 1UL << 47 || (stack >= stacksUsed && stack != SampleLayout.UnknownStack)) { garbage++; continue; }
            samples.Add(new SampleEntry(address, size, U64(e, SampleLayout.SampleTimeNs), stack, U32(e, SampleLayout.SampleThread)));
        }
        return samples;
    }

    /// <summary>Both sequence words equal and even: the entry was not being written while it was copied.</summary>
    private static bool Consistent(ReadOnlySpan<byte> entry, int seqEnd)
    {
        ulong begin = BinaryPrimitives.ReadUInt64LittleEndian(entry);
        ulong end = BinaryPrimitives.ReadUInt64LittleEndian(entry[seqEnd..]);
        return begin == end && begin % 2 == 0;
    }

    private static unsafe bool ReadAt(int fd, byte[] buffer, long offset)
    {
        int done = 0;
        fixed (byte* p = buffer)
        {
            while (done < buffer.Length)
            {
                nint n = Libc.PRead(fd, p + done, (nuint)(buffer.Length - done), offset + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == 4) continue;
                if (n <= 0) return false;
                done += (int)n;
            }
        }
        return true;
    }

    private static SampleReadResult Fail(SampleReadError error, string detail) => new(null, error, detail);
    private static ulong U64(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b[offset..]);
    private static uint U32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b[offset..]);
}
