using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The heap map a preloaded program publishes, checked against what the library's debug
/// exports (konfiscator_debug_regions, konfiscator_debug_free_blocks) and its heap check say.</summary>
public class HeapMapTests
{
    public HeapMapTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public async Task The_map_matches_the_regions_and_free_blocks_cell_by_cell()
    {
        using var stats = new TempDir("stats");
        using var heap = await KHeap.StartAsync(stats.Path);
        Check(heap, stats.Path, "after the first phase");
        heap.Go("go1");
        await heap.WaitForAsync("ready2");
        Check(heap, stats.Path, "after 8 MiB more");
        heap.Go("go2");
        Assert.True(heap.Process.WaitForExit(20_000));
        Assert.Equal(0, heap.Process.ExitCode);
    }

    private static void Check(KHeap heap, string statsDir, string when)
    {
        Assert.Equal(0, heap.HeapCheck());
        var expectedRegions = heap.Regions();
        var free = heap.FreeBlocks();
        Assert.NotEmpty(expectedRegions);

        var map = HeapMapReader.Read(Path.Combine(statsDir, SegmentFileName.Format(heap.Process.Id, 0)));
        Assert.NotNull(map);
        Assert.Equal(0, map.Unsettled);
        // One thread, so one arena holds every region.
        var arena = Assert.Single(map.Arenas);
        Assert.Equal(expectedRegions, arena.Regions.Select(r => (r.Start, r.Bytes)).ToList());
        Assert.Equal(HeapMapLayout.MinCellShift, arena.CellShift);

        var problems = new List<string>();
        ulong totalFree = 0;
        foreach (var region in arena.Regions)
        {
            ulong end = region.Start + region.Bytes;
            for (int k = 0; k < region.CellCount; k++)
            {
                ulong from = region.Start + (ulong)k * arena.CellBytes, to = Math.Min(from + arena.CellBytes, end);
                ulong freeHere = 0;
                foreach (var (address, bytes) in free)
                {
                    ulong a = Math.Max(address, from), b = Math.Min(address + bytes, to);
                    if (b > a) freeHere += b - a;
                }
                ulong span = to - from;
                var expected = (byte)((freeHere * 255 + span / 2) / span);
                var cell = arena.Cells[region.FirstCell + k];
                if (cell.Free != expected || cell.Cached != 0 || cell.Used != 255 - expected)
                    problems.Add($"{when}: region 0x{region.Start:x} cell {k}: map says used {cell.Used} free {cell.Free} cached {cell.Cached}, the free blocks make free {expected}");
            }
        }
        foreach (var (_, bytes) in free) totalFree += bytes;
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.Equal(totalFree, arena.FreeBytes);
        Assert.Equal(0UL, arena.CachedBytes);
        Assert.Equal(arena.RegionBytes, arena.UsedBytes + arena.FreeBytes);

        // The free-block histogram counts the same blocks.
        var histogram = new uint[HeapMapLayout.FreeBuckets];
        foreach (var (_, bytes) in free) histogram[Math.Min(StatsLayout.HistogramBucket(bytes), HeapMapLayout.FreeBuckets - 1)]++;
        Assert.Equal(histogram, arena.FreeHistogram);
    }

    [ArtifactsFact]
    public async Task A_heap_of_many_regions_stays_within_the_bound_with_coarser_cells()
    {
        using var stats = new TempDir("stats");
        using var heap = await KHeap.StartAsync(stats.Path, many: true);
        Assert.Equal(0, heap.HeapCheck());
        var expectedRegions = heap.Regions();
        var map = HeapMapReader.Read(Path.Combine(stats.Path, SegmentFileName.Format(heap.Process.Id, 0)));
        Assert.NotNull(map);
        var arena = Assert.Single(map.Arenas);
        ulong regionBytes = expectedRegions.Aggregate(0UL, (n, r) => n + r.Bytes);
        Assert.True(regionBytes > (ulong)HeapMapLayout.MaxCells << HeapMapLayout.MinCellShift,
            $"the test heap ({regionBytes} bytes) does not need more than {HeapMapLayout.MaxCells} cells of 64 KiB");
        Assert.Equal(expectedRegions, arena.Regions.Select(r => (r.Start, r.Bytes)).ToList());
        Assert.True(arena.CellShift > HeapMapLayout.MinCellShift, $"cells of 2^{arena.CellShift} bytes");
        Assert.True(arena.Cells.Count <= HeapMapLayout.MaxCells, $"{arena.Cells.Count} cells");
        // How long the rebuild took, timed exactly: writing more than 1 600 cells takes microseconds
        // (the coarse clock this was once read from said 0, and rebuilds then came too often).
        Assert.InRange(arena.WalkMicroseconds, 1u, 10_000_000u);
        // The finest cells that fit: half their size would not.
        ulong finer = expectedRegions.Aggregate(0UL, (n, r) => n + HeapMapLayout.CellsFor(r.Bytes, arena.CellShift - 1));
        Assert.True(finer > HeapMapLayout.MaxCells);
        // The segment file is as long as before plus the fixed map: bounded whatever the heap.
        var file = new FileInfo(Path.Combine(stats.Path, SegmentFileName.Format(heap.Process.Id, 0)));
        var header = File.ReadAllBytes(file.FullName).AsSpan(0, StatsLayout.HeaderSize);
        ulong mapBytes = BitConverter.ToUInt64(header[HeapMapLayout.OffMapBytes..]);
        uint sections = BitConverter.ToUInt32(header[HeapMapLayout.OffMapSections..]);
        Assert.Equal((ulong)sections * HeapMapLayout.SectionBytes, mapBytes);
        // After the map come the fixed-size sample tables (SampleLayout), then the file ends.
        ulong mapEnd = BitConverter.ToUInt64(header[HeapMapLayout.OffMapOffset..]) + mapBytes;
        Assert.Equal(mapEnd, BitConverter.ToUInt64(header[SampleLayout.SegOffRegionOffset..]));
        Assert.Equal((long)(mapEnd + (ulong)SampleLayout.RegionBytes), file.Length);
        heap.Go("go1");
        heap.Go("go2");
    }

    [ArtifactsFact]
    public async Task With_thread_caches_the_map_still_covers_every_byte_of_each_region()
    {
        using var stats = new TempDir("stats");
        using var heap = await KHeap.StartAsync(stats.Path, threadCaches: true);
        var map = HeapMapReader.Read(Path.Combine(stats.Path, SegmentFileName.Format(heap.Process.Id, 0)));
        Assert.NotNull(map);
        var arena = Assert.Single(map.Arenas);
        Assert.Equal(heap.Regions(), arena.Regions.Select(r => (r.Start, r.Bytes)).ToList());
        Assert.Equal(arena.RegionBytes, arena.UsedBytes + arena.FreeBytes + arena.CachedBytes);
        foreach (var cell in arena.Cells)
            Assert.InRange(cell.Used + cell.Free + cell.Cached, 253, 257); // each share rounded on its own
        heap.Go("go1");
        heap.Go("go2");
    }
}
