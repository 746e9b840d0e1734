using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Purging (docs/heap.md, "Regions", "Purge"): a free block of 64 KiB or more that stays
/// free is marked by one pass and has its inner pages given back (madvise, still mapped) by
/// the next; a pass runs once a MiB has been freed and 50 ms have gone by since the last.
/// Each test loads an instance of its own: the passes' clock and counts are the arena's.
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed unsafe class PurgeTests
{
    private const nuint KiB = 1024;
    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    [Fact]
    public void AFreeBlockLeftAlone_GivesItsInnerPagesBack_AtTheSecondPassAfterItsFree()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        const ulong coldBytes = 96 * 1024;                 // in the heap: below the 128 KiB threshold
        nint cold = lib.Malloc((nuint)coldBytes);
        nint fence = lib.Malloc(4 * KiB);                 // keeps it from joining the free space above
        MemoryChecks.Fill(cold, coldBytes, 3);
        // Its inner pages: the block's first 32 bytes (header and node pointer) stay resident.
        nint inner = (nint)(((ulong)cold + Page) & ~(Page - 1));
        ulong innerBytes = ((ulong)cold + coldBytes - Page) & ~(Page - 1);
        innerBytes -= (ulong)inner;
        Assert.Equal(innerBytes / Page, ResidentPages(inner, innerBytes));

        lib.Free(cold);

        // Frees of blocks too large for the cold one (first fit places them above the fence),
        // 1.2 MiB a round, a round every 60 ms: the first pass marks, the second gives back.
        int rounds = 0;
        while (ResidentPages(inner, innerBytes) != 0 && rounds++ < 40)
        {
            for (int i = 0; i < 10; i++) lib.Free(lib.Malloc(120 * KiB));
            Thread.Sleep(60);
        }
        Assert.True(ResidentPages(inner, innerBytes) == 0,
            $"{ResidentPages(inner, innerBytes)} of the free block's {innerBytes / Page} inner pages still resident after {rounds} rounds of 1.2 MiB freed");
        Assert.True(rounds >= 2, $"the pages went back after {rounds} rounds: a block must be marked by one pass and purged by a later one");
        Assert.Equal(0, lib.HeapCheck());

        // The block is still the heap's: first fit hands it out again, its inner pages zero.
        nint again = lib.Malloc((nuint)coldBytes);
        Assert.Equal(cold, again);
        MemoryChecks.AssertZero(inner, innerBytes, "a purged block's inner pages");
        lib.Free(again);
        lib.Free(fence);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void AFreeBlockThatChangesBetweenPasses_KeepsItsPages()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        const ulong coldBytes = 192 * 1024 - 64;          // 3 × 64 KiB, in the heap once the threshold rose
        // A large block freed raises the mapping threshold (ThresholdTests), so 192 KiB comes from the heap.
        lib.Free(lib.Malloc(200 * KiB));
        nint cold = lib.Malloc((nuint)coldBytes);
        nint fence = lib.Malloc(4 * KiB);
        Assert.True(MemoryChecks.InHeap(lib, cold), "a 192 KiB request must come from the heap after the threshold rose");
        MemoryChecks.Fill(cold, coldBytes, 5);
        lib.Free(cold);
        nint inner = (nint)(((ulong)cold + 64 * 1024 + Page) & ~(Page - 1));   // pages of the upper part
        ulong innerBytes = 64 * 1024;

        // Every round carves 16 bytes off the block's bottom and gives them back: the block
        // changes (its header is rewritten, its marks cleared) between any two passes.
        for (int round = 0; round < 6; round++)
        {
            nint carved = lib.Malloc(3 * KiB);
            Assert.Equal(cold, carved);
            lib.Free(carved);
            for (int i = 0; i < 10; i++) lib.Free(lib.Malloc(230 * KiB));   // heap: below the raised threshold, too large for the block
            Thread.Sleep(60);
        }
        Assert.Equal(innerBytes / Page, ResidentPages(inner, innerBytes));
        Assert.Equal(0, lib.HeapCheck());
        lib.Free(fence);
    }

    private static ulong ResidentPages(nint start, ulong bytes)
    {
        ulong pages = bytes / Page;
        var vector = new byte[pages];
        fixed (byte* v = vector)
            Assert.Equal(0, Libc.MinCore(start, (nuint)bytes, v));
        return (ulong)vector.Count(b => (b & 1) != 0);
    }
}
