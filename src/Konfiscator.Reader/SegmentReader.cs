using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Konfiscator.Reader.Interop;
using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>Why a file in the stats directory is not a readable segment. The lower-case names are
/// the <c>reason</c> label of <c>konfiscator_exporter_read_errors_total</c>.</summary>
public enum ReadError
{
    None = 0,
    Symlink,
    NotRegularFile,
    Truncated,
    BadMagic,
    BadVersion,
    BadLayout,
    NameMismatch,
    Io,
}

public enum ReadStatus
{
    /// <summary>A valid segment.</summary>
    Ok,
    /// <summary>A file being created right now (empty or zero header, less than a few seconds old): try again later.</summary>
    Pending,
    /// <summary>The file disappeared between listing and opening (an ended process collected by someone).</summary>
    Gone,
    /// <summary>Not a segment: skip it and count it.</summary>
    Error,
}

/// <summary>Identifies one version of one file, so a bad file is counted once, not at every scan.</summary>
public readonly record struct FileIdentity(string Name, ulong Inode, ulong Size, long MtimeNs);

public readonly record struct ReadResult(ReadStatus Status, ProcessStats? Stats, ReadError Error, string Detail, FileIdentity Identity)
{
    public bool Ok => Status == ReadStatus.Ok;
}

/// <summary>Reads segment files: opened with O_NOFOLLOW|O_NONBLOCK (a planted symlink is refused, a
/// planted FIFO cannot block), checked to be a regular file, read with pread (never a lock, never a
/// write, so the process that writes it is never held up), and validated against
/// <see cref="StatsLayout"/> before any figure is trusted.</summary>
public static class SegmentReader
{
    /// <summary>Slot counts above this are refused as garbage (a 9 MiB segment; the writer uses
    /// 2 + up to 64 arenas + its thread slots).</summary>
    public const int MaxSlotCount = 16384;

    /// <summary>A file this young that is still empty or has a zero header is being created.</summary>
    public static readonly TimeSpan CreationGrace = TimeSpan.FromSeconds(5);

    public static string ReasonLabel(ReadError error) => error switch
    {
        ReadError.Symlink => "symlink",
        ReadError.NotRegularFile => "not_regular_file",
        ReadError.Truncated => "truncated",
        ReadError.BadMagic => "bad_magic",
        ReadError.BadVersion => "bad_version",
        ReadError.BadLayout => "bad_layout",
        ReadError.NameMismatch => "name_mismatch",
        ReadError.Io => "io",
        _ => "none",
    };

    public static IEnumerable<ReadError> AllErrors =>
        Enum.GetValues<ReadError>().Where(e => e != ReadError.None);

    /// <summary>Reads the segment at <paramref name="path"/>. When the file name has the segment
    /// form, the pid and generation in the header must agree with it.</summary>
    public static unsafe ReadResult Read(string path)
    {
        string name = Path.GetFileName(path);
        var noIdentity = new FileIdentity(name, 0, 0, 0);

        int fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.ENOENT)
                return new ReadResult(ReadStatus.Gone, null, ReadError.None, "file is gone", noIdentity);
            if (errno == Libc.ELOOP)
            {
                // Identify the link itself (not its target) so it is counted once.
                Libc.LStat(path, out var link);
                return Fail(ReadError.Symlink, "is a symbolic link; not followed",
                    new FileIdentity(name, link.Inode, link.Size, link.MtimeNs));
            }
            return Fail(ReadError.Io, $"cannot open: {Marshal.GetPInvokeErrorMessage(errno)}", noIdentity);
        }
        try
        {
            int err = Libc.StatFd(fd, out var st);
            if (err != 0)
                return Fail(ReadError.Io, $"cannot stat: {Marshal.GetPInvokeErrorMessage(err)}", noIdentity);
            var identity = new FileIdentity(name, st.Inode, st.Size, st.MtimeNs);
            if (!st.IsRegular)
                return Fail(ReadError.NotRegularFile, "is not a regular file", identity);

            bool young = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000L - st.CtimeNs < CreationGrace.Ticks * 100;
            if (st.Size == 0 && young)
                return new ReadResult(ReadStatus.Pending, null, ReadError.None, "being created", identity);
            if (st.Size < StatsLayout.HeaderSize)
                return Fail(ReadError.Truncated, $"{st.Size} bytes, shorter than the {StatsLayout.HeaderSize}-byte header", identity);

            var header = new byte[StatsLayout.HeaderSize];
            if (!ReadFully(fd, header, 0, out string? ioError))
                return Fail(ioError is null ? ReadError.Truncated : ReadError.Io, ioError ?? "header cut short", identity);

            ulong magic = U64(header, StatsLayout.OffMagic);
            if (magic != StatsLayout.Magic)
            {
                if (magic == 0 && young)
                    return new ReadResult(ReadStatus.Pending, null, ReadError.None, "header not written yet", identity);
                return Fail(ReadError.BadMagic, $"bad magic 0x{magic:x16}", identity);
            }
            uint version = U32(header, StatsLayout.OffVersion);
            if (version != StatsLayout.Version)
                return Fail(ReadError.BadVersion, $"layout version {version}, this reader knows {StatsLayout.Version}", identity);
            uint headerSize = U32(header, StatsLayout.OffHeaderSize);
            uint slotSize = U32(header, StatsLayout.OffSlotSize);
            uint slotCount = U32(header, StatsLayout.OffSlotCount);
            if (headerSize != StatsLayout.HeaderSize || slotSize != StatsLayout.SlotSize || slotCount < 1 || slotCount > MaxSlotCount)
                return Fail(ReadError.BadLayout, $"header size {headerSize}, slot size {slotSize}, slot count {slotCount}", identity);
            int pid = I32(header, StatsLayout.OffPid);
            if (pid <= 0)
                return Fail(ReadError.BadLayout, $"pid {pid}", identity);

            // Slots: the process slot, the arenas, one shared slot, the thread slots. A writer
            // that does not fill in the split (both zero) is read as process slot + arenas.
            uint arenaSlots = U32(header, StatsLayout.OffArenaSlots);
            uint threadSlots = U32(header, StatsLayout.OffThreadSlots);
            uint threadSlotsUsed = U32(header, StatsLayout.OffThreadSlotsUsed);
            int arenaCount;
            int slotsToRead;
            if (arenaSlots == 0 && threadSlots == 0)
            {
                arenaCount = (int)slotCount - 1;
                slotsToRead = (int)slotCount;
            }
            else if ((ulong)arenaSlots + threadSlots + 2 == slotCount)
            {
                arenaCount = (int)arenaSlots;
                // Thread slots past the ones ever handed out are still zero: no need to read them.
                slotsToRead = StatsLayout.FirstThreadSlot(arenaCount) + (int)Math.Min(threadSlotsUsed, threadSlots);
            }
            else
            {
                return Fail(ReadError.BadLayout, $"{arenaSlots} arena slots + {threadSlots} thread slots do not fit {slotCount} slots", identity);
            }

            // Thread slots are larger than the others (StatsLayout.SlotOffset).
            int segmentSize = StatsLayout.SlotOffset(arenaCount, (int)slotCount);
            if (st.Size < (ulong)segmentSize)
                return Fail(ReadError.Truncated, $"{st.Size} bytes, the segment needs {segmentSize}", identity);

            uint generation = U32(header, StatsLayout.OffExecGeneration);
            if (SegmentFileName.TryParse(name, out int namePid, out uint nameGeneration)
                && (namePid != pid || nameGeneration != generation))
                return Fail(ReadError.NameMismatch, $"header says pid {pid} generation {generation}", identity);

            var body = new byte[StatsLayout.SlotOffset(arenaCount, slotsToRead) - StatsLayout.HeaderSize];
            if (!ReadFully(fd, body, StatsLayout.HeaderSize, out ioError))
                return Fail(ioError is null ? ReadError.Truncated : ReadError.Io, ioError ?? "counters cut short", identity);

            var slots = MemoryMarshal.Cast<byte, ulong>(body.AsSpan());
            if (!BitConverter.IsLittleEndian)
            {
                var swapped = slots.ToArray();
                BinaryPrimitives.ReverseEndianness(swapped, swapped);
                slots = swapped;
            }
            var stats = new ProcessStats(
                fileName: name,
                pid: pid,
                startTime: U64(header, StatsLayout.OffStartTime),
                generation: generation,
                parentPid: I32(header, StatsLayout.OffParentPid),
                flags: U32(header, StatsLayout.OffFlags),
                command: DecodeCommand(header.AsSpan(StatsLayout.OffCommand, StatsLayout.CommandBytes)),
                arenaCount: arenaCount,
                values: ProcessStats.Merge(slots, slotsToRead, arenaCount));
            return new ReadResult(ReadStatus.Ok, stats, ReadError.None, "", identity);
        }
        finally
        {
            Libc.Close(fd);
        }

        static ReadResult Fail(ReadError error, string detail, FileIdentity identity) =>
            new(ReadStatus.Error, null, error, detail, identity);
    }

    /// <summary>The command name: bytes up to the first NUL, UTF-8 (invalid bytes replaced).</summary>
    public static string DecodeCommand(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        if (end >= 0) bytes = bytes[..end];
        string command = Encoding.UTF8.GetString(bytes);
        // Control characters would only make label values hard to read.
        command = new string(command.Select(c => char.IsControl(c) ? '?' : c).ToArray()).Trim();
        return command.Length == 0 ? "unknown" : command;
    }

    private static unsafe bool ReadFully(int fd, byte[] buffer, long offset, out string? ioError)
    {
        ioError = null;
        int done = 0;
        fixed (byte* p = buffer)
        {
            while (done < buffer.Length)
            {
                nint n = Libc.PRead(fd, p + done, (nuint)(buffer.Length - done), offset + done);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 4) continue; // EINTR
                    ioError = $"cannot read: {Marshal.GetPInvokeErrorMessage(errno)}";
                    return false;
                }
                if (n == 0) return false; // the file shrank under us
                done += (int)n;
            }
        }
        return true;
    }

    private static ulong U64(byte[] b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(offset));
    private static uint U32(byte[] b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(offset));
    private static int I32(byte[] b, int offset) => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(offset));
}
