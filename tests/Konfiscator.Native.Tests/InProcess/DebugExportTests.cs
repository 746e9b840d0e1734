using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>konfiscator_debug_free_blocks, konfiscator_debug_regions and
/// konfiscator_debug_all_regions: what the model test learns the arena from (and the other
/// tests where the heap is) must itself be right.</summary>
[Collection(InProcessCollection.Name)]
public sealed class DebugExportTests : HeapTest
{
    [Fact]
    public void FreeBlocks_AreAddressOrdered_SeparatedByBlocksInUse_AndInsideRegions()
    {
        // Some free space between blocks in use (sizes above the thread caches', so that freeing
        // makes free blocks).
        var blocks = Enumerable.Range(0, 60).Select(i => Lib.Malloc((nuint)(1100 + i * 37 % 3000))).ToList();
        for (int i = 0; i < blocks.Count; i++)
        {
            if (i % 3 != 0)
                Lib.Free(blocks[i]);
            else
                Keep(blocks[i]);
        }

        var free = Lib.FreeBlocks();
        var regions = Lib.Regions();

        Assert.NotEmpty(free);
        Assert.NotEmpty(regions);
        for (int i = 0; i < free.Length; i++)
        {
            var block = free[i];
            Assert.True(block.Header % HeapContract.Unit == 0 && block.Size % HeapContract.Unit == 0, $"{block} is not in 16-byte units");
            Assert.True(block.Size >= HeapContract.MinBlockBytes, $"{block} is smaller than 32 bytes");
            if (i > 0)
                Assert.True(free[i - 1].End < block.Header, $"free blocks {free[i - 1]} and {block} are out of order, overlap or touch");
            Assert.True(regions.Any(r => block.Header >= r.First && block.End <= r.End), $"{block} is in no region ({string.Join(", ", regions)})");
        }
    }

    [Fact]
    public void Regions_ArePageAligned_WithTheFirstBlockAtOffset48_AndAtLeast1MiB()
    {
        Keep(Lib.Malloc(10));
        var regions = Lib.Regions();

        Assert.NotEmpty(regions);
        foreach (var region in regions)
        {
            ulong start = region.First - HeapContract.RegionHeaderBytes;
            ulong length = region.End + HeapContract.SentinelBytes - start;
            Assert.True(start % (ulong)Environment.SystemPageSize == 0, $"region {region} starts at 0x{start:x}, not page aligned");
            Assert.True(length >= HeapContract.FirstRegionBytes, $"region {region} is {length} bytes, less than 1 MiB");
        }
        var sorted = regions.OrderBy(r => r.First).ToList();
        for (int i = 1; i < sorted.Count; i++)
            Assert.True(sorted[i - 1].End < sorted[i].First, $"regions {sorted[i - 1]} and {sorted[i]} overlap");
    }

    [Fact]
    public void AllRegions_HoldTheCallingThreadsRegions_AndWhereAnotherThreadsBlockLies()
    {
        Keep(Lib.Malloc(10));
        nint others = 0;
        // 5 000 bytes: above the thread caches' sizes, so the block comes from that thread's
        // home arena's regions, whichever arena that is.
        var thread = new Thread(() => others = Lib.Malloc(5000));
        thread.Start();
        thread.Join();
        Assert.NotEqual(0, others);
        Keep(others);

        var all = Lib.AllRegions();
        foreach (var region in Lib.Regions())
            Assert.Contains(region, all);
        Assert.True(all.Any(r => r.Contains((ulong)others)), $"0x{others:x}, allocated by another thread, is in none of {string.Join(", ", all)}");
        Assert.Equal(all.Length, all.Distinct().Count());
        var sorted = all.OrderBy(r => r.First).ToList();
        for (int i = 1; i < sorted.Count; i++)
            Assert.True(sorted[i - 1].End < sorted[i].First, $"regions {sorted[i - 1]} and {sorted[i]} overlap");
    }

    [Fact]
    public void FreeBlocks_ReturnsTheFullCount_AndWritesNoMoreThanMaxPairs()
    {
        var blocks = Enumerable.Range(0, 8).Select(_ => Lib.Malloc(2000)).ToList();
        for (int i = 0; i < blocks.Count; i++)
        {
            if (i % 2 == 0)
                Lib.Free(blocks[i]);
            else
                Keep(blocks[i]);
        }
        int total = Lib.FreeBlocks().Length;
        Assert.True(total >= 2, "the arena should have several free blocks");

        const ulong Untouched = 0xDEADBEEFDEADBEEF;
        var buffer = Enumerable.Repeat(Untouched, 64).ToArray();
        nint count = Lib.RawFreeBlocks(buffer, 1);

        Assert.Equal(total, count);
        Assert.NotEqual(Untouched, buffer[0]);
        Assert.All(buffer.Skip(2), word => Assert.Equal(Untouched, word));

        Assert.Equal(total, Lib.RawFreeBlocks(buffer, 0));
    }

    [Fact]
    public void Regions_ReturnsTheFullCount_AndWritesNoMoreThanMaxPairs()
    {
        Keep(Lib.Malloc(10));
        int total = Lib.Regions().Length;

        const ulong Untouched = 0xDEADBEEFDEADBEEF;
        var buffer = Enumerable.Repeat(Untouched, 64).ToArray();
        nint count = Lib.RawRegions(buffer, 0);

        Assert.Equal(total, count);
        Assert.All(buffer, word => Assert.Equal(Untouched, word));
    }

    [Fact]
    public void HeapCheck_IsZero_OnASoundHeap()
    {
        Assert.Equal(0, Lib.HeapCheck());
    }

    [Fact]
    public void InAProcessWithThreads_TheLocksAreAtomic()
    {
        // The test host runs many threads, so glibc's single-thread flag is clear and every
        // lock must take the atomic path (the plain one would let two threads in at once).
        Assert.False(Lib.LocksArePlain(), "konfiscator_debug_single_threaded() is 1 in a process with many threads");
    }
}
