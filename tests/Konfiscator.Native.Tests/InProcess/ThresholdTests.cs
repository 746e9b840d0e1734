using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// The mapping threshold (docs/heap.md, "Regions"): requests at or above it get their own
/// mapping; it starts at 128 KiB and rises, as glibc's does, when a large block is freed: the
/// first time to that block's usable size + 1 (glibc's rule), every later time to the first of
/// 128 KiB, 256 KiB, 512 KiB, … above the freed block's usable size, at most 32 MiB. The
/// threshold is state of the whole library that other tests move, so each test here loads an
/// instance of its own.
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class ThresholdTests
{
    private const ulong KiB = 1024, MiB = 1024 * KiB;

    [Fact]
    public void AtFirst_RequestsBelow128KiB_StayInTheArena_AndFrom128KiB_GetTheirOwnMapping()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);

        nint below = lib.Malloc((nuint)(128 * KiB - 1));
        nint at = lib.Malloc((nuint)(128 * KiB));

        Assert.True(MemoryChecks.InHeap(lib, below), $"malloc(131071) = 0x{below:x} is in no region of the arena");
        Assert.False(MemoryChecks.InHeap(lib, at), $"malloc(131072) = 0x{at:x} lies in a region of the arena");
        Assert.True((ulong)at % 16 == 0 && lib.UsableSize(at) >= 128 * KiB);
        lib.Free(below);
        lib.Free(at);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void TheFirstLargeBlockFreed_RaisesTheThreshold_AsGlibcDoes_ToItsUsableSizePlusOne()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        nint large = lib.Malloc(300_000);
        Assert.False(MemoryChecks.InHeap(lib, large), "a 300 000-byte request must first get its own mapping");
        ulong usable = lib.UsableSize(large);

        lib.Free(large);

        Assert.False(MemoryChecks.IsMapped(large), "the large block's mapping is still there after free");
        nint again = lib.Malloc(300_000);
        nint asLargeAsBefore = lib.Malloc((nuint)usable);
        // A buffer that grows by doubling (1 MiB freed for one of 2 MiB) gets its next size
        // mapped, and given back whole on its free, as under glibc.
        nint larger = lib.Malloc((nuint)(usable + 1));
        Assert.True(MemoryChecks.InHeap(lib, again), $"after freeing a large block of {usable} usable bytes, malloc(300000) = 0x{again:x} must come from the heap");
        Assert.True(MemoryChecks.InHeap(lib, asLargeAsBefore), $"malloc({usable}) = 0x{asLargeAsBefore:x} must come from the heap: the threshold is {usable + 1}");
        Assert.False(MemoryChecks.InHeap(lib, larger), $"malloc({usable + 1}) = 0x{larger:x} is at the threshold after the first large free: its own mapping");
        lib.Free(again);
        lib.Free(asLargeAsBefore);
        lib.Free(larger);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void LaterLargeBlocksFreed_RaiseTheThreshold_ToThePowerOfTwoAboveTheirUsableSize()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        lib.Free(lib.Malloc(140_000));                 // the first rise: to its usable size + 1
        nint large = lib.Malloc(300_000);
        Assert.False(MemoryChecks.InHeap(lib, large), "a 300 000-byte request is above the first rise: its own mapping");
        ulong usable = lib.UsableSize(large);

        lib.Free(large);

        nint again = lib.Malloc(300_000);
        nint asLargeAsBefore = lib.Malloc((nuint)usable);
        // 300 000 usable bytes: the threshold is now 512 KiB, where glibc's rule would give
        // usable + 1, and every larger request would be mapped (and faulted in) afresh.
        nint larger = lib.Malloc((nuint)(512 * KiB - 1));
        nint muchLarger = lib.Malloc((nuint)(2 * usable));
        Assert.True(MemoryChecks.InHeap(lib, again), $"after freeing a large block of {usable} usable bytes, malloc(300000) = 0x{again:x} must come from the heap");
        Assert.True(MemoryChecks.InHeap(lib, asLargeAsBefore), $"malloc({usable}) = 0x{asLargeAsBefore:x} must come from the heap: the threshold is above {usable}");
        Assert.True(MemoryChecks.InHeap(lib, larger), $"malloc(524287) = 0x{larger:x} must come from the heap: the threshold is 512 KiB");
        Assert.False(MemoryChecks.InHeap(lib, muchLarger), $"malloc({2 * usable}) = 0x{muchLarger:x} is at or above the threshold: its own mapping");
        lib.Free(again);
        lib.Free(asLargeAsBefore);
        lib.Free(larger);
        lib.Free(muchLarger);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void TheThreshold_NeverRisesAbove32MiB()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        nint twenty = lib.Malloc((nuint)(20 * MiB));
        nint forty = lib.Malloc((nuint)(40 * MiB));
        lib.Free(twenty);
        lib.Free(forty);

        nint fromTheHeap = lib.Malloc((nuint)(20 * MiB));
        nint mapped = lib.Malloc((nuint)(32 * MiB));

        Assert.True(MemoryChecks.InHeap(lib, fromTheHeap), "after freeing a 20 MiB large block, malloc(20 MiB) must come from the heap");
        Assert.False(MemoryChecks.InHeap(lib, mapped), "malloc(32 MiB) is at or above any threshold: its own mapping");
        lib.Free(fromTheHeap);
        lib.Free(mapped);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void FreeingAnAlignedLargeBlock_RaisesTheThresholdToo()
    {
        // docs/heap.md: the threshold rises "when a large block is freed"; an aligned request at
        // or above the threshold is a large block like any other.
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        nint aligned = lib.Memalign(4096, 300_000);
        Assert.False(MemoryChecks.InHeap(lib, aligned), "memalign(4096, 300000) must first get its own mapping");
        ulong usable = lib.UsableSize(aligned);

        lib.Free(aligned);

        nint again = lib.Malloc(300_000);
        Assert.True(MemoryChecks.InHeap(lib, again), $"after freeing a large block of {usable} usable bytes (from memalign), malloc(300000) = 0x{again:x} must come from the heap");
        lib.Free(again);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void Realloc_OfAHeapBlockTo128KiBOrMore_MovesItToItsOwnMapping()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        nint p = lib.Malloc(5000);
        Assert.True(MemoryChecks.InHeap(lib, p));
        MemoryChecks.Fill(p, 5000, 6);

        nint large = lib.Realloc(p, 300_000);

        Assert.False(MemoryChecks.InHeap(lib, large), $"a block grown to 300 000 bytes must have its own mapping; 0x{large:x} is in a region");
        MemoryChecks.AssertFilled(large, 5000, 6, "the block moved to its own mapping");
        lib.Free(large);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void Realloc_OfALargeBlock_RemapsIt_AndBelow128KiBMovesItIntoTheHeap()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        nint p = lib.Malloc(200_000);
        Assert.False(MemoryChecks.InHeap(lib, p), "a 200 000-byte block must have its own mapping");
        MemoryChecks.Fill(p, 200_000, 5);

        nint grown = lib.Realloc(p, 1_500_000);
        Assert.True(grown != 0 && (ulong)grown % 16 == 0);
        Assert.False(MemoryChecks.InHeap(lib, grown));
        MemoryChecks.AssertFilled(grown, 200_000, 5, "the large block grown with mremap");
        Assert.True(lib.UsableSize(grown) >= 1_500_000);

        nint shrunk = lib.Realloc(grown, 150_000);
        Assert.False(MemoryChecks.InHeap(lib, shrunk), "a 150 000-byte block is still above the threshold: its own mapping");
        MemoryChecks.AssertFilled(shrunk, 150_000, 5, "the large block shrunk with mremap");

        nint inHeap = lib.Realloc(shrunk, 1000);
        Assert.True(MemoryChecks.InHeap(lib, inHeap), $"a large block shrunk below 128 KiB must move into the heap; 0x{inHeap:x} is in no region");
        MemoryChecks.AssertFilled(inHeap, 1000, 5, "the large block moved into the heap");
        lib.Free(inHeap);
        Assert.Equal(0, lib.HeapCheck());
    }
}
