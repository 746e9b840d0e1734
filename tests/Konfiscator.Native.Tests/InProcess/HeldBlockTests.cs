using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// The held blocks (docs/heap.md, "Held blocks"; Heap/ThreadCache.Classes.cs): with the caches
/// on, a block above the bins' sizes (1 056 bytes) and below 32 KiB that a thread frees is held back from the heap, sorted
/// into a size class (eight a doubling), and the thread's next malloc, calloc or realloc(NULL)
/// of that class takes the smallest held block there that fits; with the caches off every free
/// goes into the heap. A block that would merge with a free neighbour (below it, or above it
/// from 2 KiB up) goes into the heap too, so the tests keep a block in use above the ones they
/// mean to be held. Each test runs on a new thread, whose cache holds nothing yet.
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class HeldBlockTests : HeapTest
{
    [Theory]
    [InlineData(1030ul)]     // a 1 056-byte block: the first held size (1 040 bytes is the last bin's)
    [InlineData(1094ul)]     // python's objects just above 1 KiB
    [InlineData(2040ul)]     // 2 064 bytes: [2 048, 2 304) was in no class before issue 9's eighth round
    [InlineData(5000ul)]
    [InlineData(32_000ul)]   // 32 016 bytes: the last class
    public void Free_HoldsTheBlock_AndAMallocOfTheSameSizeTakesItBack(ulong size) =>
        OnANewThread(() =>
        {
            var (p, above) = AdjacentPair(size);
            Keep(above);            // the block above stays in use
            var heapBefore = Lib.FreeBlocks();

            Lib.Free(p);

            Assert.Equal(heapBefore, Lib.FreeBlocks());     // not in the heap: held
            var (walked, counted) = Lib.CachedBytes();
            Assert.Equal(walked, counted);
            Assert.True(walked >= (long)HeapContract.BlockSize(size), $"{walked} cached bytes after freeing a {HeapContract.BlockSize(size)}-byte block");
            Assert.Equal(p, Keep(Lib.Malloc((nuint)size)));
            AssertHeapSound();
        });

    [Fact]
    public void Malloc_TakesTheSmallestHeldBlockOfItsClassThatFits()
    {
        // Blocks of 4 720, 4 880 and 5 024 bytes are all of the class [4 608, 5 120).
        OnANewThread(() =>
        {
            // Held blocks never merge, so nothing needs to keep them apart; only the last needs
            // a block in use above it (a free one there would take it into the heap).
            nint small = Lib.Malloc(4700);
            nint middle = Lib.Malloc(4860);
            var (large, above) = AdjacentPair(5016);
            Keep(above);
            Lib.Free(large);
            Lib.Free(small);
            Lib.Free(middle);

            nint first = Keep(Lib.Malloc(4800));    // 4 816 bytes: only 4 880 and 5 024 fit; 4 880 is smaller
            nint second = Keep(Lib.Malloc(4610));   // 4 624: all fit, 4 720 is the smallest
            nint third = Keep(Lib.Malloc(4610));

            Assert.Equal(middle, first);
            Assert.Equal(small, second);
            Assert.Equal(large, third);
            Assert.Equal((nuint)(5024 - HeapContract.Overhead), Lib.UsableSize(third));   // the slack is the caller's
        });
    }

    [Theory]
    [InlineData(5200ul)]   // 5 216 bytes: the class above, [5 120, 5 632)
    [InlineData(4500ul)]   // 4 512 bytes: the class below, [4 096, 4 608)
    [InlineData(5010ul)]   // 5 024 bytes: its class, but larger than the held 5 008
    public void Malloc_OfAnotherClass_OrLargerThanWhatIsHeld_GoesToTheHeap(ulong size) =>
        OnANewThread(() =>
        {
            var (p, above) = AdjacentPair(5000);
            Keep(above);
            Lib.Free(p);

            nint q = Keep(Lib.Malloc((nuint)size));

            Assert.NotEqual(p, q);
            Assert.Equal(p, Keep(Lib.Malloc(5000)));   // still held
        });

    [Fact]
    public void Calloc_OfAHeldBlock_ZeroesIt_AndReallocOfNullTakesOneAsMallocWould() =>
        OnANewThread(() =>
        {
            var (p, above) = AdjacentPair(5000);
            Keep(above);
            Fill(p, 5000, 7);
            Lib.Free(p);
            Assert.True(Lib.CachedBytes().Walked >= 5000, "the block was held");
            nint c = Keep(Lib.Calloc(1, 5000));
            Assert.Equal(p, c);
            AssertZero(c, 5000, "calloc of a held block");

            var (q, aboveQ) = AdjacentPair(9000);
            Keep(aboveQ);
            Lib.Free(q);
            Assert.True(Lib.CachedBytes().Walked >= 9000, "the block was held");
            Assert.Equal(q, Keep(Lib.Realloc(0, 9000)));
        });

    [Theory]
    [InlineData(2040ul)]    // 2 064 bytes: the smallest block the block above is looked at for
    [InlineData(5000ul)]
    [InlineData(32_000ul)]
    public void Free_OfABlockBelowAFreeBlock_MergesItIntoTheHeap(ulong size) =>
        OnANewThread(() =>
        {
            // Shrunk in place, a block gives its tail back to the heap: a free block right above it.
            nint p = Lib.Malloc((nuint)size + 6000);
            Assert.Equal(p, Lib.Realloc(p, (nuint)size));
            ulong header = HeapContract.HeaderOf(p);
            ulong end = header + HeapContract.BlockSize(size);
            Assert.Contains(Lib.FreeBlocks(), b => b.Header == end);

            Lib.Free(p);

            // Merged with the block above, not held.
            Assert.Contains(Lib.FreeBlocks(), b => b.Header == header && b.End > end);
            var (walked, counted) = Lib.CachedBytes();
            Assert.Equal(walked, counted);
            AssertHeapSound();
        });

    [Theory]
    [InlineData(1500ul)]
    [InlineData(5000ul)]
    public void Free_OfABlockAboveAFreeBlock_MergesItIntoTheHeap(ulong size) =>
        OnANewThread(() =>
        {
            var (below, p) = AdjacentPair(size);
            Lib.Free(below);
            Lib.MallocTrim(0);          // below into the heap (held, it was not free)
            ulong start = HeapContract.HeaderOf(below);
            ulong end = HeapContract.HeaderOf(p) + HeapContract.BlockSize(size);

            Lib.Free(p);

            Assert.Contains(Lib.FreeBlocks(), b => b.Header == start && b.End >= end);
            AssertHeapSound();
        });

    [Fact]
    public void Free_OfABlockOfLessThan2KiB_IsHeldWhateverIsAboveIt() =>
        OnANewThread(() =>
        {
            // Below 2 KiB only the block below is looked at (ThreadCaches.JoinsAHole says why).
            nint p = Lib.Malloc(1500 + 6000);
            Assert.Equal(p, Lib.Realloc(p, 1500));   // the tail above it is free now
            var heapBefore = Lib.FreeBlocks();

            Lib.Free(p);

            Assert.Equal(heapBefore, Lib.FreeBlocks());
            Assert.Equal(p, Keep(Lib.Malloc(1500)));
        });

    /// <summary>Two blocks of <paramref name="size"/> in use, the second right above the first.
    /// Two mallocs of one size land so unless the first took the rest of a hole; the pairs
    /// tried on the way stay in use until the test ends.</summary>
    private (nint Lower, nint Upper) AdjacentPair(ulong size)
    {
        for (int attempt = 0; attempt < 1000; attempt++)
        {
            nint lower = Lib.Malloc((nuint)size);
            nint upper = Lib.Malloc((nuint)size);
            if (HeapContract.HeaderOf(upper) == HeapContract.HeaderOf(lower) + HeapContract.BlockSize(size))
                return (lower, upper);
            Keep(lower);
            Keep(upper);
        }
        throw new InvalidOperationException($"no two {size}-byte blocks side by side in 1 000 tries");
    }

    [Fact]
    public void MallocTrim_GivesTheHeldBlocksBackToTheHeap() =>
        OnANewThread(() =>
        {
            var (p, above) = AdjacentPair(5000);
            Keep(above);
            Lib.Free(p);
            ulong header = HeapContract.HeaderOf(p);
            Assert.DoesNotContain(Lib.FreeBlocks(), b => b.Header <= header && header < b.End);

            Lib.MallocTrim(0);

            var (walked, counted) = Lib.CachedBytes();
            Assert.Equal(walked, counted);
            Assert.Contains(Lib.FreeBlocks(), b => b.Header <= header && header < b.End);
            AssertHeapSound();
        });

    [Fact]
    public void WithTheCachesOff_NothingIsHeld()
    {
        var lib = LibKonfiscator.WithoutThreadCache;
        nint p = lib.Malloc(5000);
        nint guard = lib.Malloc(64);
        lib.Free(p);

        Assert.Equal(0, lib.ReleaseHeld());
        Assert.Contains(lib.FreeBlocks(), b => b.Header <= HeapContract.HeaderOf(p) && HeapContract.HeaderOf(p) < b.End);
        lib.Free(guard);
    }
}
