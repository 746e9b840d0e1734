using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Konfiscator.Reader.Interop;
using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>One cell of the heap map: shares of its bytes (0..255 each, adding up to 255 give or take rounding).</summary>
public readonly record struct HeapCell(byte Used, byte Free, byte Cached);

/// <summary>One region of an arena, as the map describes it.</summary>
public sealed record HeapRegion(ulong Start, ulong Bytes, int FirstCell, int CellCount);

/// <summary>One arena's part of the map, read whole (its sequence number was the same even value
/// before and after the copy).</summary>
public sealed record HeapArenaMap(
    int Arena, ulong Updates, ulong UpdatedMs, int CellShift, IReadOnlyList<HeapRegion> Regions, IReadOnlyList<HeapCell> Cells,
    ulong UsedBytes, ulong FreeBytes, ulong CachedBytes, ulong RegionBytes, int OmittedRegions, ulong OmittedBytes,
    IReadOnlyList<uint> FreeHistogram, uint WalkMicroseconds)
{
    public ulong CellBytes => 1UL << CellShift;
}

/// <summary>The heap map of one process (layout: src/Shared/HeapMapLayout.cs): the arenas that
/// have regions, and those whose section could not be read whole (the writer kept changing it).</summary>
public sealed record HeapMap(IReadOnlyList<HeapArenaMap> Arenas, int Unsettled)
{
    public IEnumerable<HeapRegion> AllRegions => Arenas.SelectMany(a => a.Regions);
    public ulong UsedBytes => Arenas.Aggregate(0UL, (n, a) => n + a.UsedBytes);
    public ulong FreeBytes => Arenas.Aggregate(0UL, (n, a) => n + a.FreeBytes);
    public ulong CachedBytes => Arenas.Aggregate(0UL, (n, a) => n + a.CachedBytes);

    /// <summary>Free blocks by size over every arena (bucket i: sizes in (2^(i-1), 2^i]).</summary>
    public ulong[] FreeHistogram()
    {
        var total = new ulong[HeapMapLayout.FreeBuckets];
        foreach (var a in Arenas)
            for (int i = 0; i < total.Length; i++) total[i] += a.FreeHistogram[i];
        return total;
    }
}

/// <summary>Reads the heap map of a segment file with pread (like <see cref="SegmentReader"/>:
/// no lock, no mapping, the writer is never held up).</summary>
public static class HeapMapReader
{
    private const int Attempts = 50;

    /// <summary>The map of the segment at <paramref name="path"/>; null when the file publishes no
    /// map (an older writer) or cannot be read.</summary>
    public static unsafe HeapMap? Read(string path)
    {
        int fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0) return null;
        try
        {
            if (Libc.StatFd(fd, out var st) != 0 || !st.IsRegular) return null;
            var header = new byte[StatsLayout.HeaderSize];
            if (!PRead(fd, header, 0) || U64(header, StatsLayout.OffMagic) != StatsLayout.Magic) return null;
            ulong offset = U64(header, HeapMapLayout.OffMapOffset);
            ulong bytes = U64(header, HeapMapLayout.OffMapBytes);
            uint version = U32(header, HeapMapLayout.OffMapVersion);
            uint sections = U32(header, HeapMapLayout.OffMapSections);
            uint sectionBytes = U32(header, HeapMapLayout.OffMapSectionBytes);
            if (offset == 0 || version != HeapMapLayout.Version || sectionBytes != HeapMapLayout.SectionBytes
                || sections == 0 || sections > 1024 || bytes != (ulong)sections * sectionBytes
                || offset % 4096 != 0 || offset + bytes > st.Size)
                return null;

            var arenas = new List<HeapArenaMap>();
            int unsettled = 0;
            var section = new byte[HeapMapLayout.SectionBytes];
            var sequence = new byte[4];
            for (int arena = 0; arena < sections; arena++)
            {
                long at = (long)offset + HeapMapLayout.SectionOffset(arena);
                bool settled = false;
                for (int attempt = 0; attempt < Attempts && !settled; attempt++)
                {
                    if (!PRead(fd, section, at) || !PRead(fd, sequence, at + HeapMapLayout.OffSequence)) return null;
                    uint before = U32(section, HeapMapLayout.OffSequence), after = U32(sequence, 0);
                    settled = before == after && (before & 1) == 0;
                    if (!settled) Thread.Sleep(1);
                }
                if (!settled)
                {
                    unsettled++;
                    continue;
                }
                if (U32(section, HeapMapLayout.OffSequence) == 0) continue; // never written
                if (Parse(arena, section) is { Regions.Count: > 0 } map) arenas.Add(map);
            }
            return new HeapMap(arenas, unsettled);
        }
        finally
        {
            Libc.Close(fd);
        }
    }

    /// <summary>Decodes one section, trusting nothing: counts are checked against the layout's bounds.</summary>
    internal static HeapArenaMap? Parse(int arena, byte[] s)
    {
        uint regionCount = U32(s, HeapMapLayout.OffRegionCount);
        uint shift = U32(s, HeapMapLayout.OffCellShift);
        uint cellCount = U32(s, HeapMapLayout.OffCellCount);
        if (regionCount > HeapMapLayout.MaxRegions || cellCount > HeapMapLayout.MaxCells
            || shift < HeapMapLayout.MinCellShift || shift > 40)
            return null;
        var regions = new List<HeapRegion>((int)regionCount);
        for (int i = 0; i < regionCount; i++)
        {
            int e = HeapMapLayout.OffRegions + i * HeapMapLayout.RegionEntryBytes;
            ulong start = U64(s, e);
            ulong regionBytes = (ulong)U32(s, e + 8) * HeapMapLayout.PageUnit;
            uint first = U32(s, e + 12);
            ulong cells = HeapMapLayout.CellsFor(regionBytes, (int)shift);
            if (first + cells > cellCount) return null;
            regions.Add(new HeapRegion(start, regionBytes, (int)first, (int)cells));
        }
        var cellList = new HeapCell[cellCount];
        for (int i = 0; i < cellCount; i++)
        {
            int c = HeapMapLayout.OffCells + i * HeapMapLayout.CellBytes;
            cellList[i] = new HeapCell(s[c], s[c + 1], s[c + 2]);
        }
        var histogram = new uint[HeapMapLayout.FreeBuckets];
        for (int i = 0; i < histogram.Length; i++) histogram[i] = U32(s, HeapMapLayout.OffFreeHistogram + 4 * i);
        return new HeapArenaMap(arena, U64(s, HeapMapLayout.OffUpdates), U64(s, HeapMapLayout.OffUpdatedMs), (int)shift,
            regions, cellList, U64(s, HeapMapLayout.OffUsedBytes), U64(s, HeapMapLayout.OffFreeBytes),
            U64(s, HeapMapLayout.OffCachedBytes), U64(s, HeapMapLayout.OffRegionBytes),
            (int)U32(s, HeapMapLayout.OffOmittedRegions), U64(s, HeapMapLayout.OffOmittedBytes), histogram,
            U32(s, HeapMapLayout.OffWalkMicroseconds));
    }

    private static unsafe bool PRead(int fd, byte[] buffer, long offset)
    {
        int done = 0;
        fixed (byte* p = buffer)
        {
            while (done < buffer.Length)
            {
                nint n = Libc.PRead(fd, p + done, (nuint)(buffer.Length - done), offset + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == 4) continue; // EINTR
                if (n <= 0) return false;
                done += (int)n;
            }
        }
        return true;
    }

    private static ulong U64(byte[] b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(offset));
    private static uint U32(byte[] b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(offset));
}
