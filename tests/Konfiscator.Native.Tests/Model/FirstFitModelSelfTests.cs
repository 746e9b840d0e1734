using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

/// <summary>The reference model against hand-worked examples from docs/heap.md, so that a model
/// test failure points at the library, not at the model. Pure C#: no library involved.</summary>
public sealed class FirstFitModelSelfTests
{
    private static readonly Region s_region = new(0x10030, 0x10030 + 0x1000);

    [Fact]
    public void Malloc_CarvesTheBottomOfTheLowestFittingBlock_WhoseRestStaysAboveIt()
    {
        var model = new FirstFitModel([new(0x10030, 64), new(0x10100, 512), new(0x10400, 1024)], [s_region]);

        var placement = model.FindFit(HeapContract.BlockSize(100), 16);

        Assert.Equal(0x10100ul, placement!.Value.Header);
        Assert.Equal(112ul, model.Take(placement.Value));
        Assert.Equal([new(0x10030, 64), new(0x10170, 400), new(0x10400, 1024)], model.FreeBlocks);
    }

    [Fact]
    public void Malloc_TakesTheWholeBlock_WhenTheRestWouldBeBelow32Bytes()
    {
        var model = new FirstFitModel([new(0x10100, 144)], [s_region]);

        var placement = model.FindFit(128, 16)!.Value;

        Assert.Equal(0x10100ul, placement.Header);
        Assert.Equal(144ul, model.Take(placement));
        Assert.Empty(model.FreeBlocks);
    }

    [Fact]
    public void Memalign_PlacesThePayloadAsLowAsPossible()
    {
        // Free block [0x10100, 0x10500), 64 bytes aligned to 64: payload align_up(0x10110, 64) =
        // 0x10140, header 0x10130, gap before 48 (stays free at 0x10100), gap after 0x390.
        var model = new FirstFitModel([new(0x10100, 0x400)], [s_region]);
        var placement = model.FindFit(64, 64)!.Value;
        Assert.Equal(0x10130ul, placement.Header);
        model.Take(placement);
        Assert.Equal([new(0x10100, 0x30), new(0x10170, 0x390)], model.FreeBlocks);

        // [0x10100, 0x10540), 80 bytes aligned to 256: payload 0x10200, header 0x101f0.
        model = new FirstFitModel([new(0x10100, 0x440)], [s_region]);
        placement = model.FindFit(80, 256)!.Value;
        Assert.Equal(0x101f0ul, placement.Header);
        model.Take(placement);
        Assert.Equal([new(0x10100, 0xf0), new(0x10240, 0x300)], model.FreeBlocks);

        // [0x10100, 0x10180), 64 bytes aligned to 32: payload 0x10120 would leave a gap of 16
        // before, so 0x10140 (header 0x10130); the 16 bytes after go with the block.
        model = new FirstFitModel([new(0x10100, 0x80)], [s_region]);
        placement = model.FindFit(64, 32)!.Value;
        Assert.Equal(0x10130ul, placement.Header);
        Assert.Equal(80ul, model.Take(placement));
        Assert.Equal([new(0x10100, 0x30)], model.FreeBlocks);
    }

    [Fact]
    public void Memalign_DoesNotFit_WhenTheAlignedBlockWouldPassTheEnd()
    {
        // [0x10120, 0x101a0), 64 bytes aligned to 64: header 0x10130 leaves a gap of 16 before
        // it, so 0x10170, whose block passes the end: no fit here; the next block fits at 0x10430.
        var model = new FirstFitModel([new(0x10120, 0x80), new(0x10400, 0x100)], [s_region]);
        Assert.Equal(0x10430ul, model.FindFit(64, 64)!.Value.Header);

        // A block too small once aligned.
        model = new FirstFitModel([new(0x10150, 0x60)], [s_region]);
        Assert.Null(model.FindFit(64, 256));
    }

    [Fact]
    public void Free_MergesWithBothNeighbours()
    {
        var model = new FirstFitModel([new(0x10100, 64), new(0x10200, 128)], [s_region]);

        model.Free(0x10140, 0xC0);

        Assert.Equal([new(0x10100, 0x180)], model.FreeBlocks);
        Assert.Equal(2, model.Merges);
    }

    [Fact]
    public void Free_UnmapsAWhollyFreeRegion_OnlyWhenAnotherIsKept()
    {
        var second = new Region(0x90030, 0x90030 + 0x1000);
        var third = new Region(0x190030, 0x190030 + 0x1000);
        var model = new FirstFitModel([new(0x10030, 0x1000), new(0x90030, 0x800)], [s_region, second, third]);

        model.Free(0x90830, 0x800);                  // second region wholly free; the first is kept
        Assert.Equal([s_region, third], model.Regions);

        var model2 = new FirstFitModel([new(0x90030, 0x800)], [s_region, second]);
        model2.Free(0x90830, 0x800);                 // no other empty region: this one is kept
        Assert.Equal([s_region, second], model2.Regions);
    }

    [Fact]
    public void Realloc_GrowsIntoAFreeUpperNeighbour_AndShrinksInPlace()
    {
        var model = new FirstFitModel([new(0x10180, 0x100)], [s_region]);

        Assert.Equal(0xE0ul, model.ResizeInPlace(0x10100, 0x80, 0xE0));     // surplus 0xA0 stays free
        Assert.Equal([new(0x101E0, 0xA0)], model.FreeBlocks);

        Assert.Equal(0x180ul, model.ResizeInPlace(0x10100, 0xE0, 0x170));   // surplus 16: taken whole
        Assert.Empty(model.FreeBlocks);

        Assert.Equal(0x40ul, model.ResizeInPlace(0x10100, 0x180, 0x40));    // shrink: the tail is freed
        Assert.Equal([new(0x10140, 0x140)], model.FreeBlocks);

        Assert.Equal(0x40ul, model.ResizeInPlace(0x10100, 0x40, 0x30));     // a 16-byte tail stays
        Assert.Null(model.ResizeInPlace(0x10100, 0x40, 0x1000));            // must move
    }

    [Fact]
    public void Threshold_RisesFirstToAFreedLargeBlocksSizePlusOne_ThenToThePowerOfTwoAbove_AtMost32MiB()
    {
        var threshold = new MappingThreshold();
        Assert.True(threshold.IsLarge(131072));
        Assert.False(threshold.IsLarge(131071));

        threshold.LargeBlockFreed(150_000);          // the first rise: glibc's rule
        Assert.False(threshold.IsLarge(150_000));
        Assert.True(threshold.IsLarge(150_001));

        threshold.LargeBlockFreed(200_688);
        Assert.False(threshold.IsLarge(262_143));
        Assert.True(threshold.IsLarge(262_144));

        threshold.LargeBlockFreed(150_000);          // below the threshold: no change
        Assert.False(threshold.IsLarge(262_143));

        threshold.LargeBlockFreed(262_144);          // a power of two itself: the next one
        Assert.False(threshold.IsLarge(524_287));
        Assert.True(threshold.IsLarge(524_288));

        threshold.LargeBlockFreed(20ul << 20);
        Assert.False(threshold.IsLarge((32ul << 20) - 1));
        threshold.LargeBlockFreed(40ul << 20);       // 32 MiB or more: no change
        Assert.True(threshold.IsLarge(32ul << 20));
    }

    [Fact]
    public void GrowRegion_JoinsTheFreeEnd_OrAddsAFreeBlock()
    {
        var grown = new Region(0x10030, 0x10030 + 0x3000);
        var model = new FirstFitModel([new(0x10800, 0x830)], [s_region]);   // free up to the sentinel
        Assert.Equal(new FreeBlock(0x10800, 0x2830), model.GrowRegion(s_region, grown));
        Assert.Equal([new(0x10800, 0x2830)], model.FreeBlocks);
        Assert.Equal([grown], model.Regions);

        model = new FirstFitModel([new(0x10100, 0x100)], [s_region]);        // the last block in use
        Assert.Equal(new FreeBlock(0x11030, 0x2000), model.GrowRegion(s_region, grown));
        Assert.Equal([new(0x10100, 0x100), new(0x11030, 0x2000)], model.FreeBlocks);
    }

    [Fact]
    public void Trim_GivesBackTheFreeEnd_AndWhollyFreeRegions()
    {
        var large = new Region(0x90030, 0x90030 + 0x5000);
        var model = new FirstFitModel([new(0x10030, 0x1000), new(0x91000, 0x4030)], [s_region, large]);
        model.Trim();
        // The wholly free region goes; the other's free end is cut after its first 32 bytes,
        // at the next page, where the new sentinel's 16 bytes end.
        Assert.Equal([new Region(0x90030, 0x92000 - 16)], model.Regions);
        Assert.Equal([new(0x91000, 0x1000 - 16)], model.FreeBlocks);
        Assert.Equal(1, model.RegionsReleased);
        Assert.Equal(1, model.TailsTrimmed);
    }
}
