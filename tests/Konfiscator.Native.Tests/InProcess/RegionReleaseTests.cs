using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Which wholly free region goes back to the OS (docs/heap.md, "Regions"): an arena keeps one,
/// the largest; when a second becomes wholly free, the smaller of the two is unmapped. Each test
/// loads an instance of its own, so that its regions are the ones it made.
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class RegionReleaseTests
{
    private const int BlockBytes = 100 * 1024; // a heap block (below the mapping threshold)

    [Fact]
    public void WhenTheLargerOfTwoRegionsEmpties_TheSmallerGoesBack()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: false);
        var blocks = new List<nint>();
        // Blocks until the arena has three regions (1, 2 and 4 MiB): the first two are then full.
        for (int i = 0; i < 200 && lib.AllRegions().Length < 3; i++)
            blocks.Add(lib.Malloc(BlockBytes));
        var regions = lib.AllRegions().OrderBy(r => r.First).ToArray();
        Assert.True(regions.Length == 3, $"100 KiB blocks made {regions.Length} regions, not 3");
        var (small, large) = (regions[0], regions[1]);
        Assert.True(large.End - large.First > small.End - small.First, "the second region is not the larger");

        foreach (nint p in blocks.Where(p => small.Contains((ulong)p)))
            lib.Free(p);
        Assert.Contains(small, lib.AllRegions()); // the only empty region: kept
        foreach (nint p in blocks.Where(p => large.Contains((ulong)p)))
            lib.Free(p);

        var after = lib.AllRegions();
        Assert.True(after.Contains(large), "the larger region, emptied last, went back to the OS: the smaller one should have");
        Assert.False(after.Contains(small), "two empty regions are kept: the smaller one should have gone back");
        foreach (nint p in blocks.Where(p => regions[2].Contains((ulong)p)))
            lib.Free(p);
        Assert.Equal(0, lib.HeapCheck());
    }
}
