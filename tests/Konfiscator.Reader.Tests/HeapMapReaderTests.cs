using System.Buffers.Binary;
using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Reader.Tests;

/// <summary>The heap map reader against hand-made and hostile maps: it decodes what the layout
/// says and refuses (null, never an exception) what does not fit.</summary>
public class HeapMapReaderTests
{
    private const int Page = 4096;

    /// <summary>A segment of SegmentBuilder's with a map of <paramref name="sections"/> sections appended.</summary>
    private static (byte[] File, int MapOffset) WithMap(int sections, Action<byte[], int>? fill = null)
    {
        var builder = new SegmentBuilder { Arenas = sections };
        byte[] segment = builder.Build();
        int offset = (segment.Length + Page - 1) / Page * Page;
        var file = new byte[offset + sections * HeapMapLayout.SectionBytes];
        segment.CopyTo(file, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(HeapMapLayout.OffMapOffset), (ulong)offset);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(HeapMapLayout.OffMapBytes), (ulong)(sections * HeapMapLayout.SectionBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(HeapMapLayout.OffMapVersion), HeapMapLayout.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(HeapMapLayout.OffMapSections), (uint)sections);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(HeapMapLayout.OffMapSectionBytes), HeapMapLayout.SectionBytes);
        fill?.Invoke(file, offset);
        return (file, offset);
    }

    /// <summary>Section 0: one region of 3 cells of 64 KiB at 0x10000000 (192 KiB).</summary>
    private static void OneRegion(byte[] file, int offset)
    {
        var s = file.AsSpan(offset);
        BinaryPrimitives.WriteUInt32LittleEndian(s[HeapMapLayout.OffSequence..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(s[HeapMapLayout.OffRegionCount..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(s[HeapMapLayout.OffCellShift..], HeapMapLayout.MinCellShift);
        BinaryPrimitives.WriteUInt32LittleEndian(s[HeapMapLayout.OffCellCount..], 3);
        BinaryPrimitives.WriteUInt64LittleEndian(s[HeapMapLayout.OffUsedBytes..], 100_000);
        BinaryPrimitives.WriteUInt64LittleEndian(s[HeapMapLayout.OffFreeBytes..], 96_608);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(HeapMapLayout.OffFreeHistogram + 4 * 12)..], 7);
        BinaryPrimitives.WriteUInt64LittleEndian(s[HeapMapLayout.OffRegions..], 0x10000000);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(HeapMapLayout.OffRegions + 8)..], 48); // 48 pages
        BinaryPrimitives.WriteUInt32LittleEndian(s[(HeapMapLayout.OffRegions + 12)..], 0);
        byte[][] cells = [[255, 0, 0], [100, 155, 0], [0, 200, 55]];
        for (int i = 0; i < cells.Length; i++) cells[i].CopyTo(s[(HeapMapLayout.OffCells + 4 * i)..]);
    }

    [Fact]
    public void A_written_section_is_decoded_and_untouched_sections_are_left_out()
    {
        using var dir = new TempDir();
        var (file, _) = WithMap(2, OneRegion);
        string path = dir.File("4242.kstats");
        File.WriteAllBytes(path, file);
        var map = HeapMapReader.Read(path);
        Assert.NotNull(map);
        var arena = Assert.Single(map.Arenas);
        Assert.Equal(0, arena.Arena);
        var region = Assert.Single(arena.Regions);
        Assert.Equal(new HeapRegion(0x10000000, 48 * 4096, 0, 3), region);
        Assert.Equal([new HeapCell(255, 0, 0), new HeapCell(100, 155, 0), new HeapCell(0, 200, 55)], arena.Cells);
        Assert.Equal(7u, arena.FreeHistogram[12]);
        Assert.Equal(96_608UL, map.FreeBytes);
    }

    [Fact]
    public void A_section_being_written_is_not_taken()
    {
        using var dir = new TempDir();
        var (file, offset) = WithMap(1, OneRegion);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(offset + HeapMapLayout.OffSequence), 5); // odd: changing
        string path = dir.File("4242.kstats");
        File.WriteAllBytes(path, file);
        var map = HeapMapReader.Read(path);
        Assert.NotNull(map);
        Assert.Empty(map.Arenas);
        Assert.Equal(1, map.Unsettled);
    }

    [Theory]
    [InlineData(HeapMapLayout.OffMapOffset, 12345UL)]           // not page aligned
    [InlineData(HeapMapLayout.OffMapOffset, 1UL << 40)]         // past the end of the file
    [InlineData(HeapMapLayout.OffMapBytes, 7UL)]                // does not match the sections
    [InlineData(HeapMapLayout.OffMapVersion, 99UL)]
    [InlineData(HeapMapLayout.OffMapSectionBytes, 4096UL)]
    [InlineData(HeapMapLayout.OffMapOffset, 0UL)]               // no map
    public void A_map_header_that_does_not_fit_means_no_map(int field, ulong value)
    {
        using var dir = new TempDir();
        var (file, _) = WithMap(1, OneRegion);
        if (field is HeapMapLayout.OffMapOffset or HeapMapLayout.OffMapBytes)
            BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(field), value);
        else
            BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(field), (uint)value);
        string path = dir.File("4242.kstats");
        File.WriteAllBytes(path, file);
        Assert.Null(HeapMapReader.Read(path));
    }

    [Fact]
    public void Random_bytes_in_a_section_never_throw_and_never_reach_past_the_cells()
    {
        using var dir = new TempDir();
        var random = new Random(7);
        string path = dir.File("4242.kstats");
        for (int round = 0; round < 300; round++)
        {
            var (file, offset) = WithMap(1, OneRegion);
            // Garble a few header words and region entries, keep the sequence even.
            for (int k = 0; k < 6; k++)
            {
                int at = random.Next(4, HeapMapLayout.OffCells) & ~3;
                BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(offset + at), (uint)random.Next() * (random.Next(2) == 0 ? 1u : 977u));
            }
            File.WriteAllBytes(path, file);
            var map = HeapMapReader.Read(path);
            Assert.NotNull(map); // the header is sound: a map, perhaps without the garbled section
            foreach (var a in map.Arenas)
            {
                Assert.InRange(a.Cells.Count, 0, HeapMapLayout.MaxCells);
                foreach (var r in a.Regions)
                    Assert.InRange(r.FirstCell + r.CellCount, 0, a.Cells.Count);
            }
        }
    }
}
