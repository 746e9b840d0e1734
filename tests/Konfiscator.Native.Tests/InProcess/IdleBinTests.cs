using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Idle bins (docs/heap.md, "Idle bins"; Heap/ThreadCache.Idle.cs): every
/// HeapContract.IdleLookEvery slow paths a thread looks at its bins; a bin that did not run
/// empty since the last look gives half its blocks back to the heap, one that did keeps them.
/// The slow paths here are mallocs of 40 000 bytes: above the bins and the held blocks, below
/// the mapping threshold, so each goes through the heap's search. The look itself is also a
/// debug export (konfiscator_debug_look_at_bins), for exact counts.
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class IdleBinTests : HeapTest
{
    private const nuint Small = 48;                      // 64-byte blocks
    private const long SmallBlock = 64;
    private const int Freed = 64;
    private const nuint HeapSized = 40_000;

    /// <summary>Frees <see cref="Freed"/> blocks of 64 bytes into the calling thread's bin and
    /// returns their headers, and the bin's bytes then (with what its refills carved beyond them).</summary>
    private (HashSet<ulong> Headers, long BinBytes) FillTheBin(long cachedBefore)
    {
        var blocks = new List<nint>();
        for (int i = 0; i < Freed; i++) blocks.Add(Lib.Malloc(Small));
        foreach (nint p in blocks) Lib.Free(p);
        long binBytes = CachedNow() - cachedBefore;
        Assert.True(binBytes >= Freed * SmallBlock, $"{binBytes} bytes cached after freeing {Freed} blocks of {SmallBlock}");
        Assert.Equal(0, binBytes % SmallBlock);
        return (blocks.Select(HeapContract.HeaderOf).ToHashSet(), binBytes);
    }

    /// <summary><paramref name="count"/> slow paths; every <paramref name="every"/>th is followed by <paramref name="between"/>.</summary>
    private void SlowPaths(int count, int every = 0, Action? between = null)
    {
        for (int i = 0; i < count; i++)
        {
            Lib.Free(Lib.Malloc(HeapSized));
            if (every > 0 && i % every == every - 1) between!();
        }
    }

    /// <summary>Looks until no bin gives anything back: the thread may have taken over the cache
    /// of a thread that ended, with blocks in its bins, which would move the counts.</summary>
    private void EmptyEveryBin()
    {
        for (int i = 0; i < 64 && Lib.LookAtBins() != 0; i++) { }
        Assert.Equal(0, Lib.LookAtBins());
    }

    private long CachedNow()
    {
        var (walked, counted) = Lib.CachedBytes();
        Assert.Equal(walked, counted);
        return counted;
    }

    [Fact]
    public void ABinThatDoesNotRunEmpty_GivesHalfItsBlocksBackAtEachLook_EveryFewThousandSlowPaths() =>
        OnANewThread(() =>
        {
            long before = CachedNow();
            var (freed, binBytes) = FillTheBin(before);

            // At least three looks after the bin was filled: the first finds that it ran empty
            // (its refills while it was filled) and notes it, the second gives half the blocks
            // back, the third half of the rest.
            SlowPaths(4 * HeapContract.IdleLookEvery);

            long left = CachedNow() - before;
            Assert.True(left <= binBytes / SmallBlock / 4 * SmallBlock, $"{left} of {binBytes} bytes still cached after three looks at an idle bin");
            // The bin gives back from its top, the blocks freed last: they are free in the heap now.
            var free = Lib.FreeBlocks();
            int inHeap = freed.Count(h => free.Any(b => b.Header <= h && h < b.End));
            Assert.True(inHeap >= Freed / 2, $"{inHeap} of the {Freed} blocks freed into the bin are free in the heap");
            AssertHeapSound();
        });

    [Fact]
    public void ABinThatRanEmptySinceTheLastLook_KeepsItsBlocks_OneThatDidNotIsHalved_TakenFromOrNot() =>
        OnANewThread(() =>
        {
            EmptyEveryBin();
            long before = CachedNow();
            var (_, binBytes) = FillTheBin(before);
            Lib.LookAtBins();                            // the bin ran empty (refills) while it was filled: kept

            // Every block of the bin taken, and one more: the bin runs empty and is refilled.
            for (long i = 0; i <= binBytes / SmallBlock; i++) Keep(Lib.Malloc(Small));
            long refilled = CachedNow() - before;

            Assert.Equal(0, Lib.LookAtBins());           // it ran empty: it keeps its blocks
            Assert.Equal(refilled, CachedNow() - before);

            // It did not run empty since: half its blocks (rounded up) go back.
            long blocks = refilled / SmallBlock;
            Assert.Equal((blocks + 1) / 2 * SmallBlock, Lib.LookAtBins());
            Assert.Equal(blocks / 2 * SmallBlock, CachedNow() - before);

            // Taken from, but not down to empty: the blocks at its bottom were not needed, and
            // half of what is left goes back too.
            blocks /= 2;
            Keep(Lib.Malloc(Small));
            blocks--;
            Assert.Equal((blocks + 1) / 2 * SmallBlock, Lib.LookAtBins());
            Assert.Equal(blocks / 2 * SmallBlock, CachedNow() - before);
            AssertHeapSound();
        });

}
