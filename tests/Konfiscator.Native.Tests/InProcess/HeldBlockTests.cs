using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// The held blocks (docs/heap.md, "Held blocks"; Heap/ThreadCache.Classes.cs): with the caches
/// on, a block above the bins' sizes (1 056 bytes) and below 32 KiB that a thread frees is held back from the heap, sorted
/// into a size class (eight a doubling), and the thread's next malloc, calloc or realloc(NULL)
/// of that class takes the smallest held block there that fits; with the caches off every free
/// goes into the heap. Each test runs on a new thread, whose cache holds nothing yet.
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
            nint p = Lib.Malloc((nuint)size);
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
            // Held blocks never merge, so nothing needs to keep them apart.
            nint small = Lib.Malloc(4700);
            nint middle = Lib.Malloc(4860);
            nint large = Lib.Malloc(5000);
            Lib.Free(large);
            Lib.Free(small);
            Lib.Free(middle);

            nint first = Keep(Lib.Malloc(4800));    // 4 816 bytes: only 4 880 and 5 024 fit; 4 880 is smaller
            nint second = Keep(Lib.Malloc(4610));   // 4 624: all fit, 4 720 is the smallest
            nint third = Keep(Lib.Malloc(4610));

            Assert.Equal(middle, first);
            Assert.Equal(small, second);
            Assert.Equal(large, third);
            Assert.Equal((nuint)(5024 - 16), Lib.UsableSize(third));   // the slack is the caller's
        });
    }

    [Theory]
    [InlineData(5200ul)]   // 5 216 bytes: the class above, [5 120, 5 632)
    [InlineData(4500ul)]   // 4 528 bytes: the class below, [4 096, 4 608)
    [InlineData(5010ul)]   // 5 040 bytes: its class, but larger than the held 5 024
    public void Malloc_OfAnotherClass_OrLargerThanWhatIsHeld_GoesToTheHeap(ulong size) =>
        OnANewThread(() =>
        {
            nint p = Lib.Malloc(5000);
            Keep(Lib.Malloc(64));
            Lib.Free(p);

            nint q = Keep(Lib.Malloc((nuint)size));

            Assert.NotEqual(p, q);
            Assert.Equal(p, Keep(Lib.Malloc(5000)));   // still held
        });

    [Fact]
    public void Calloc_OfAHeldBlock_ZeroesIt_AndReallocOfNullTakesOneAsMallocWould() =>
        OnANewThread(() =>
        {
            nint p = Lib.Malloc(5000);
            Fill(p, 5000, 7);
            Lib.Free(p);
            nint c = Keep(Lib.Calloc(1, 5000));
            Assert.Equal(p, c);
            AssertZero(c, 5000, "calloc of a held block");

            nint q = Lib.Malloc(9000);
            Lib.Free(q);
            Assert.Equal(q, Keep(Lib.Realloc(0, 9000)));
        });

    [Fact]
    public void MallocTrim_GivesTheHeldBlocksBackToTheHeap() =>
        OnANewThread(() =>
        {
            nint p = Lib.Malloc(5000);
            Keep(Lib.Malloc(64));
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
