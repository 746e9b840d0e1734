using Konfiscator.Native.Tests.Model;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Where blocks go (docs/heap.md, "Placement", "Aligned requests", "Free and coalescing",
/// "realloc"), each expectation computed from the arena as the debug exports show it just before
/// the call. The sizes are above the thread caches' bins (blocks of more than 2 KiB), which reach
/// the heap in any configuration once the blocks the caches hold back of them are given back
/// (HeapFreeBlocks, ModelOfArena: docs/heap.md, "Held blocks"), so the same tests run on the
/// default library and on one with the caches off.
/// </summary>
public abstract class PlacementTests : HeapTest
{
    /// <summary>Before a test that predicts whether the heap grows: nothing to do with the caches off.</summary>
    private protected virtual void GiveBackWhatCachesHold() { }

    [Theory]
    [InlineData(2049ul)]
    [InlineData(2100ul)]
    [InlineData(4080ul)]
    [InlineData(65536ul)]
    [InlineData(131071ul)]
    public void Malloc_CarvesTheTopOfTheLowestFittingFreeBlock(ulong request)
    {
        GiveBackWhatCachesHold();
        var model = ModelOfArena();
        ulong block = HeapContract.BlockSize(request);
        Placement? fit = model.FindFit(block, 16);

        nint p = Keep(Lib.Malloc((nuint)request));

        if (fit is { } expected)
        {
            Assert.True(HeapContract.HeaderOf(p) == expected.Header,
                $"malloc({request}) placed its header at 0x{HeapContract.HeaderOf(p):x}; first fit in {expected.Source} puts it at 0x{expected.Header:x}");
            model.Take(expected);
            Assert.Equal(model.FreeBlocks, HeapFreeBlocks());
            Assert.Equal((nuint)(expected.BlockSize - HeapContract.Overhead), Lib.UsableSize(p));
        }
        else
        {
            // A new region: the request is carved from its bottom, as from any free block.
            var region = Lib.Regions().Single(r => r.Contains((ulong)p));
            Assert.Equal(region.First, HeapContract.HeaderOf(p));
            Assert.Equal((nuint)(block - HeapContract.Overhead), Lib.UsableSize(p));
        }
    }

    [Fact]
    public void Malloc_TakesTheLowestAddressedFreeBlockThatFits_AmongHolesOfSeveralSizes()
    {
        // Holes of several sizes, each kept apart from the others by a block in use.
        var holes = new[] { 2100ul, 3000ul, 9000ul }.Select(size =>
        {
            nint hole = Lib.Malloc((nuint)size);
            Keep(Lib.Malloc(2100));
            return hole;
        }).ToList();
        holes.ForEach(Lib.Free);

        foreach (ulong request in new ulong[] { 2050, 2090, 2900, 5000, 9000, 20_000, 2060 })
        {
            var model = ModelOfArena();
            var expected = model.FindFit(HeapContract.BlockSize(request), 16);
            Assert.NotNull(expected);

            nint p = Keep(Lib.Malloc((nuint)request));

            Assert.True(HeapContract.HeaderOf(p) == expected.Value.Header,
                $"malloc({request}) placed its header at 0x{HeapContract.HeaderOf(p):x}; first fit puts it at 0x{expected.Value.Header:x} in {expected.Value.Source}");
            model.Take(expected.Value);
            Assert.Equal(model.FreeBlocks, HeapFreeBlocks());
        }
    }

    [Fact]
    public void Malloc_HandsOutTheWholeBlock_WhenTheRestWouldBe16Bytes()
    {
        // A hole of exactly 3040 + 16 bytes between blocks in use.
        nint[] run = AllocateAdjacent(3, 3040);
        ulong hole = HeapContract.HeaderOf(run[1]);
        FreeNow(run[1]);                                 // a 3056-byte free block
        Assert.Equal(new FreeBlock(hole, 3056), FreeBlockAt(hole));

        var model = ModelOfArena();
        var expected = model.FindFit(HeapContract.BlockSize(3024), 16)!.Value;
        nint p = Keep(Lib.Malloc(3024));                 // a 3040-byte block: the rest would be 16

        Assert.Equal(expected.Header, HeapContract.HeaderOf(p));
        Assert.Equal((nuint)(expected.BlockSize - HeapContract.Overhead), Lib.UsableSize(p));
        if (expected.Source.Header == hole)
        {
            Assert.Equal(hole, HeapContract.HeaderOf(p));
            Assert.Equal((nuint)(3056 - HeapContract.Overhead), Lib.UsableSize(p));
        }
    }

    public static TheoryData<ulong, ulong> AlignedRequests()
    {
        var data = new TheoryData<ulong, ulong>();
        foreach (ulong alignment in new ulong[] { 32, 64, 256, 4096, 65536 })
        {
            foreach (ulong size in new ulong[] { 2100, 3000, 70_000 })
                data.Add(alignment, size);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(AlignedRequests))]
    public void Memalign_PlacesThePayloadAsHighAsPossible_InTheLowestFittingBlock(ulong alignment, ulong size)
    {
        // Some holes first, so that the lowest fitting block is not always the top of the arena.
        var holes = Enumerable.Range(0, 4).Select(i =>
        {
            nint hole = Lib.Malloc((nuint)(2100 + i * 900));
            Keep(Lib.Malloc(2100));
            return hole;
        }).ToList();
        holes.ForEach(Lib.Free);
        var model = ModelOfArena();
        Placement? fit = model.FindFit(HeapContract.BlockSize(size), alignment);

        nint p = Keep(Lib.Memalign((nuint)alignment, (nuint)size));

        AssertAligned(p, alignment, $"memalign({alignment}, {size})");
        if (fit is { } expected)
        {
            Assert.True(HeapContract.HeaderOf(p) == expected.Header,
                $"memalign({alignment}, {size}) placed its header at 0x{HeapContract.HeaderOf(p):x}; the rule puts it at 0x{expected.Header:x} in {expected.Source}");
            model.Take(expected);
            Assert.Equal(model.FreeBlocks, HeapFreeBlocks());
        }
    }

    [Fact]
    public void Free_MergesWithBothFreeNeighbours()
    {
        nint[] run = AllocateAdjacent(4, 2100);   // a, b, c and a guard above them, in use
        ulong firstHeader = HeapContract.HeaderOf(run[0]);

        FreeNow(run[0]);
        FreeNow(run[2]);
        FreeNow(run[1]);

        FreeBlock? merged = FreeBlockAt(firstHeader);
        Assert.NotNull(merged);
        Assert.Equal(HeapContract.HeaderOf(run[3]), merged.Value.End);   // up to the guard
        var free = HeapFreeBlocks();
        for (int i = 1; i < free.Length; i++)
            Assert.True(free[i - 1].End < free[i].Header, $"free blocks {free[i - 1]} and {free[i]} are neighbours (or overlap)");
    }

    [Fact]
    public void Free_FromAnotherThread_GoesBackToTheBlocksArenaAtOnce()
    {
        // "A block records its arena, so a free from any thread goes back to the right one", and
        // "a freed block merges at once" with its free neighbours.
        Prime(5000);
        var before = HeapFreeBlocks();
        nint p = Lib.Malloc(5000);

        var other = new Thread(() => Lib.Free(p));
        other.Start();
        other.Join();

        Assert.Equal(before, HeapFreeBlocks());
    }

    [Theory]
    [InlineData(2049ul)]
    [InlineData(10_000ul)]
    [InlineData(100_000ul)]
    public void MallocThenFree_RestoresTheFreeList(ulong size)
    {
        Prime((nuint)size);
        var before = HeapFreeBlocks();

        Lib.Free(Lib.Malloc((nuint)size));

        Assert.Equal(before, HeapFreeBlocks());
    }

    [Fact]
    public void CFree_FreesLikeFree()
    {
        Prime(5000);
        var before = HeapFreeBlocks();
        nint p = Lib.Malloc(5000);
        Assert.NotEqual(before, HeapFreeBlocks());

        Lib.CFree(p);

        Assert.Equal(before, HeapFreeBlocks());
    }

    [Fact]
    public void Realloc_GrowsInPlace_WhenTheNextBlockIsFree()
    {
        nint[] run = AllocateAdjacent(3, 2100);    // a, b, and a guard in use above b
        nint a = run[0];
        Fill(a, 2100, 1);
        FreeNow(run[1]);

        nint grown = ReallocKept(a, 4000);         // a 4016-byte block: 2112 + 2112 is enough

        Assert.Equal(a, grown);
        AssertFilled(a, 2100, 1, "the block grown in place");
        Assert.Equal((nuint)(4016 - HeapContract.Overhead), Lib.UsableSize(a));
        // The 208-byte surplus was split off and stays free just above the grown block.
        ulong surplus = HeapContract.HeaderOf(a) + 4016;
        Assert.Equal(new FreeBlock(surplus, 4224 - 4016), FreeBlockAt(surplus));
    }

    [Fact]
    public void Realloc_GrowingInPlace_TakesTheWholeNeighbour_WhenTheSurplusIsBelow32Bytes()
    {
        nint[] run = AllocateAdjacent(3, 2100);
        nint a = run[0];
        FreeNow(run[1]);

        nint grown = ReallocKept(a, 4200);         // needs 4208 of the 4224 bytes: a 16-byte rest

        Assert.Equal(a, grown);
        Assert.Equal((nuint)(4224 - HeapContract.Overhead), Lib.UsableSize(a));
        Assert.Null(FreeBlockAt(HeapContract.HeaderOf(a) + 4208));
    }

    [Fact]
    public void Realloc_Moves_WhenTheNextBlockIsInUse_AndFreesTheOldBlock()
    {
        nint[] run = AllocateAdjacent(2, 2100);
        nint a = run[0];
        Fill(a, 2100, 2);
        var model = ModelOfArena();
        // A move takes an eighth more than asked (docs/heap.md, "realloc").
        var expected = model.FindFit(HeapContract.BlockSize(5000 + 5000 / 8), 16);

        nint moved = ReallocKept(a, 5000);

        Assert.NotEqual(a, moved);
        if (expected is { } placement)
            Assert.Equal(placement.Header, HeapContract.HeaderOf(moved));
        AssertFilled(moved, 2100, 2, "the moved block");
        Assert.True(Lib.UsableSize(moved) >= 5000);
        Assert.NotNull(FreeBlockAt(HeapContract.HeaderOf(a)));
    }

    [Fact]
    public void Realloc_Shrinks_InPlace_AndFreesTheTail()
    {
        nint[] run = AllocateAdjacent(2, 3000);    // the block and a guard above it
        nint p = run[0];
        Fill(p, 3000, 4);

        nint shrunk = ReallocKept(p, 2100);

        Assert.Equal(p, shrunk);
        AssertFilled(p, 2100, 4, "the shrunk block");
        Assert.Equal((nuint)(2112 - HeapContract.Overhead), Lib.UsableSize(p));
        ulong tail = HeapContract.HeaderOf(p) + 2112;
        Assert.Equal(new FreeBlock(tail, 3008 - 2112), FreeBlockAt(tail));
    }

    [Fact]
    public void Realloc_ShrinkingBy16Bytes_KeepsTheBlockAsItIs()
    {
        nint[] run = AllocateAdjacent(2, 2100);    // 2112-byte blocks
        nint p = run[0];

        nint result = ReallocKept(p, 2088);        // 2096-byte block: a 16-byte rest is not split off

        Assert.Equal(p, result);
        Assert.Equal((nuint)(2112 - HeapContract.Overhead), Lib.UsableSize(p));
    }

    [Theory]
    [InlineData(1025ul)]     // a held size (docs/heap.md, "Held blocks")
    [InlineData(5000ul)]
    [InlineData(40000ul)]    // above the held sizes
    public void Realloc_OfNull_ActsAsMalloc(ulong size)
    {
        // Placement is deterministic: malloc then free restores the arena, so realloc(NULL, n)
        // must return the very address malloc(n) did (nothing held before: what earlier tests
        // left held, up to the thread's budget, would decide where a free goes).
        Lib.ReleaseHeld();
        Prime((nuint)size);
        nint viaMalloc = Lib.Malloc((nuint)size);
        Lib.Free(viaMalloc);

        nint viaRealloc = Keep(Lib.Realloc(0, (nuint)size));

        Assert.Equal(viaMalloc, viaRealloc);
    }

    [Fact]
    public void Realloc_ToZero_FreesTheBlockAndReturnsNull()
    {
        Prime(3000);
        var before = HeapFreeBlocks();
        nint p = Lib.Malloc(3000);

        nint result = Lib.Realloc(p, 0);

        Assert.Equal(0, result);
        Assert.Equal(before, HeapFreeBlocks());   // the block went back (and merged) as free() would
    }
}

/// <summary>The placement rules on the library as it is configured by default.</summary>
[Collection(InProcessCollection.Name)]
public sealed class DefaultPlacementTests : PlacementTests
{
    // A heap about to grow first takes back what the caches hold for it, parked caches of
    // ended threads and blocks other threads freed included (Arenas.FindFitElsewhere): where
    // the model sees no fit, one of those may make one. Earlier tests leave such blocks (which
    // ones depends on the order the tests run in), so they all go back first.
    private protected override void GiveBackWhatCachesHold() => Lib.MallocTrim(0);
}

/// <summary>The placement rules with KONFISCATOR_TCACHE=0, where they hold for every size: the
/// common tests, and small blocks too.</summary>
[Collection(InProcessCollection.Name)]
public sealed class ThreadCacheOffPlacementTests : PlacementTests
{
    private protected override LibKonfiscator Lib => LibKonfiscator.WithoutThreadCache;

    [Theory]
    [InlineData(0ul)]
    [InlineData(1ul)]
    [InlineData(15ul)]
    [InlineData(16ul)]
    [InlineData(17ul)]
    [InlineData(24ul)]
    [InlineData(100ul)]
    [InlineData(1000ul)]
    [InlineData(1008ul)]
    public void SmallMalloc_CarvesTheTopOfTheLowestFittingFreeBlock(ulong request) =>
        Malloc_CarvesTheTopOfTheLowestFittingFreeBlock(request);

    [Fact]
    public void SmallBlocks_FreedAndAllocatedAgain_RestoreTheFreeList()
    {
        Prime(100);
        var before = HeapFreeBlocks();
        var blocks = Enumerable.Range(0, 20).Select(i => Lib.Malloc((nuint)(i * 40))).ToList();
        blocks.ForEach(Lib.Free);
        Assert.Equal(before, HeapFreeBlocks());
    }
}
