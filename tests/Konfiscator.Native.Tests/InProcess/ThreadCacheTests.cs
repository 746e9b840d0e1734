using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// The thread caches in front of the heap (docs/heap.md, "Thread caches"): one bin per block
/// size from 32 bytes to 1 KiB; a free parks the block (still in use as far as the heap is
/// concerned), a malloc of that size takes the most recently parked one, and an empty bin is
/// refilled with the blocks as many first-fit requests would get.
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class ThreadCacheTests : HeapTest
{
    [Theory]
    [InlineData(0ul)]
    [InlineData(100ul)]
    [InlineData(1024ul)]    // the largest request the bins serve (1094, python's objects above its
                            // own allocator, is a held size: HeldBlockTests)
    public void FreeThenMallocOfTheSameSize_ReturnsTheMostRecentlyParkedBlock(ulong size) =>
        // On a new thread: the test's own thread may have taken over the cache of a thread that
        // ended (docs/heap.md, "Thread caches"), with blocks of other arenas in its bins, which
        // its frees send home.
        OnANewThread(() =>
        {
            nint a = Lib.Malloc((nuint)size);
            nint b = Lib.Malloc((nuint)size);
            Lib.Free(a);
            Lib.Free(b);

            nint first = Lib.Malloc((nuint)size);
            nint second = Lib.Malloc((nuint)size);
            Lib.Free(first);
            Lib.Free(second);

            Assert.Equal(b, first);
            Assert.Equal(a, second);
        });

    [Fact]
    public void AFreeOnAThreadOfAnotherArena_SendsTheBlockHome_AndItsOwnerGetsItBack()
    {
        // docs/heap.md: "A block another arena made, of a size the freeing thread has not
        // allocated from its own heap yet ..., goes home instead." The freeing thread's next
        // malloc of the size must not hand it out again (it shares a cache line with its owner's
        // blocks), and once that thread's chain went home (at its exit), the owner's mallocs of
        // the size reach it again.
        nint p = Lib.Malloc(100);
        ushort owner = ArenaOf(p);
        // Its arena from a block of another size: allocating 100 bytes would make it keep p.
        var (freeingArena, reused) = FreeOnAThreadOfAnotherArena(p, owner, firstAllocation: 600);
        Assert.True(freeingArena != owner, $"three new threads all had arena {owner}, the test thread's");
        Assert.True(reused != p, $"a thread of arena {freeingArena} that freed 0x{p:x} (arena {owner}) got it back from its next malloc of that size");

        // The owner: its bin of the size empties, and its refill adopts the blocks sent home.
        var taken = new List<nint>();
        bool back = false;
        for (int i = 0; i < 5000 && !back; i++)
        {
            nint q = Lib.Malloc(100);
            taken.Add(q);
            back = q == p;
        }
        foreach (nint q in taken) Lib.Free(q);
        Assert.True(back, $"0x{p:x}, freed on a thread of arena {freeingArena}, never came back to its owner (arena {owner}) in 5000 mallocs of its size");
        var (walked, counted) = Lib.CachedBytes();
        Assert.Equal(walked, counted);
        Assert.Equal(0, Lib.HeapCheck());
    }

    [Fact]
    public void AThreadThatAllocatesASizeItself_KeepsWhatItFreesOfItFromAnotherArena()
    {
        // docs/heap.md: "A thread that allocates the size itself keeps such blocks in its bin":
        // threads handing each other blocks in bulk reuse them where they are.
        nint p = Lib.Malloc(100);
        ushort owner = ArenaOf(p);
        var (freeingArena, reused) = FreeOnAThreadOfAnotherArena(p, owner, firstAllocation: 100);
        Assert.True(freeingArena != owner, $"three new threads all had arena {owner}, the test thread's");
        Assert.True(reused == p, $"a thread of arena {freeingArena} that allocates 100-byte blocks itself freed 0x{p:x} (arena {owner}) and got 0x{reused:x} from its next malloc of that size, not it");
        var (walked, counted) = Lib.CachedBytes();
        Assert.Equal(walked, counted);
    }

    /// <summary>On a new thread whose arena is not <paramref name="owner"/>: mallocs
    /// <paramref name="firstAllocation"/> bytes (which gives the thread its arena), frees p, and
    /// returns the thread's arena and what its next malloc of 100 bytes returned. A new thread
    /// takes the arena fewest live threads use, so it is seldom the caller's (three tries).</summary>
    private (ushort FreeingArena, nint Reused) FreeOnAThreadOfAnotherArena(nint p, ushort owner, nuint firstAllocation)
    {
        nint reused = 0;
        ushort freeingArena = owner;
        for (int attempt = 0; attempt < 3 && freeingArena == owner; attempt++)
        {
            OnANewThread(() =>
            {
                nint mine = Lib.Malloc(firstAllocation);
                freeingArena = ArenaOf(mine);
                if (freeingArena != owner)
                {
                    Lib.Free(p);
                    reused = Lib.Malloc(100);
                    Lib.Free(reused);
                }
                Lib.Free(mine);
            });
        }
        return (freeingArena, reused);
    }

    /// <summary>The arena index in a block's header: the u16 after size and prev size (docs/heap.md).</summary>
    private static ushort ArenaOf(nint payload) => HeapContract.ArenaOf(payload);

    [Fact]
    public void AParkedBlock_IsNotAFreeBlockOfTheHeap()
    {
        nint p = Lib.Malloc(100);
        Lib.Free(p);

        Assert.Null(FreeBlockAt(HeapContract.HeaderOf(p)));
        Keep(Lib.Malloc(100));      // takes it back
    }

    [Fact]
    public void ABlockAbove1KiB_IsNeverParked()
    {
        Prime(1009);
        var before = Lib.FreeBlocks();
        nint p = Lib.Malloc(1009);      // a 1040-byte block
        Lib.Free(p);
        Assert.Equal(before, Lib.FreeBlocks());
    }

    [Fact]
    public void BlocksAbove1KiB_AreHeldAndCounted_AndABlockAbove32KiBIsNot()
    {
        // docs/heap.md, "Held blocks": blocks above the bins' 1040 bytes and below 32 KiB that a
        // thread frees are held back; what they hold is in the cached-bytes figure like a bin's.
        OnANewThread(() =>
        {
            var rng = new Random(3);
            var live = new List<nint>();
            for (int i = 0; i < 2000; i++)
            {
                if (live.Count > 0 && rng.Next(3) == 0)
                {
                    int k = rng.Next(live.Count);
                    Lib.Free(live[k]);
                    live.RemoveAt(k);
                }
                else
                {
                    live.Add(Lib.Malloc((nuint)rng.Next(1025, 2049)));
                }
            }
            var (walkedBefore, _) = Lib.CachedBytes();
            foreach (nint p in live) Lib.Free(p);
            var (walked, counted) = Lib.CachedBytes();
            Assert.True(walked - walkedBefore >= 1056,
                $"freeing {live.Count} blocks of 1025..2048 bytes added {walked - walkedBefore} bytes to the caches, not one such block");
            Assert.Equal(walked, counted);

            nint large = Lib.Malloc(33000);        // a 33 024-byte block: above the held sizes
            ulong header = HeapContract.HeaderOf(large);
            Lib.Free(large);
            // Not held: in the heap at once (Lib.FreeBlocks, not HeapFreeBlocks, which gives the
            // held blocks back first).
            Assert.Contains(Lib.FreeBlocks(), f => header >= f.Header && header < f.End);
        });
        Assert.Equal(0, Lib.HeapCheck());
    }

    [Fact]
    public void TheCachedBytesFigure_IsTheBytesOfTheBlocksTheCachesHold()
    {
        // docs/metrics.md, konfiscator_cached_bytes: blocks parked in caches (and on their
        // way back to their arena) are in use to the heap and free to the program. Batches
        // larger than a bin (so bins overflow, grow and refill), frees from another thread,
        // realloc through the cache and a thread that exits with a full cache.
        var (walkedBefore, countedBefore) = Lib.CachedBytes();
        Assert.Equal(walkedBefore, countedBefore);
        var kept = new System.Collections.Concurrent.ConcurrentQueue<nint>();
        OnANewThread(() =>
        {
            var rng = new Random(9);
            for (int round = 0; round < 6; round++)
            {
                var batch = new List<nint>();
                for (int i = 0; i < 3000; i++) batch.Add(Lib.Malloc((nuint)rng.Next(1, 300)));
                if (round % 2 == 1) batch.Reverse();
                for (int i = 0; i < batch.Count; i++)
                {
                    if (i % 7 == 0) kept.Enqueue(batch[i]);
                    else if (i % 11 == 0) kept.Enqueue(Lib.Realloc(batch[i], (nuint)rng.Next(1, 1000)));
                    else Lib.Free(batch[i]);
                }
            }
            var (walked, counted) = Lib.CachedBytes();
            Assert.True(walked > 0, "a thread that just freed thousands of small blocks holds none in its cache");
            Assert.Equal(walked, counted);
        });
        // Freed by this thread, allocated by the one that ended (whose cache went back).
        var (walkedAfterExit, countedAfterExit) = Lib.CachedBytes(); // one reading: walk and figure together
        Assert.Equal(walkedAfterExit, countedAfterExit);
        while (kept.TryDequeue(out nint p)) Lib.Free(p);
        var (after, countedAfter) = Lib.CachedBytes();
        Assert.Equal(after, countedAfter);
        Assert.Equal(0, Lib.HeapCheck());
    }

    [Fact]
    public void AnEmptyBin_IsRefilledWithTheBlocksAsManyFirstFitRequestsWouldGet() =>
        OnANewThread(RefillFromTheFirstFit);

    [Fact]
    public void ABinsRefills_StartWithTwoBlocksAndDoubleUpToHalfItsCapacity() =>
        OnANewThread(RefillsStartSmallAndDouble);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ManyBlocksFreedInOrderOrInReverse_GoBackToTheHeapWhole(bool reverse) =>
        OnANewThread(() => FreeManyInOrder(reverse));

    [Fact]
    public void Realloc_OfACachedSizeBlockThatMustMove_TakesAnEighthMore_AndParksTheOldBlock() =>
        OnANewThread(MoveThroughTheCache);

    private void MoveThroughTheCache()
    {
        // docs/heap.md, realloc: a block of a cached size whose upper neighbour is not free moves
        // through the cache, to a block for the new size and an eighth more (as a move in the heap
        // takes), and the old block is parked in its bin, where the next malloc of its size finds it.
        nint a = Lib.Malloc(48);                  // a new thread's first refill: two 64-byte blocks,
        nint above = Keep(Lib.Malloc(48));        // the second right above the first
        Assert.True((ulong)above == (ulong)a + HeapContract.BlockSize(48),
                    $"setup: malloc(48) gave 0x{a:x} and then 0x{above:x}, not the block right above it");
        Fill(a, 48, 4);

        nint moved = Keep(Lib.Realloc(a, 64));

        Assert.True(moved != a, $"realloc(0x{a:x}, 64) stayed in place although the block above it is in use");
        MemoryChecks.AssertFilled(moved, 48, 4, "the moved block");
        ulong usable = Lib.UsableSize(moved);
        Assert.True(usable >= 64 + 64 / 8, $"realloc(p, 64) moved to a block of {usable} usable bytes, not 64 and an eighth more");
        Assert.Equal(moved, Lib.Realloc(moved, (nuint)usable));   // the slack: the next growth stays in place
        Assert.Equal(a, Keep(Lib.Malloc(48)));                       // the old block, parked in its bin
        var (walked, counted) = Lib.CachedBytes();
        Assert.Equal(walked, counted);
        AssertHeapSound();
    }

    [Fact]
    public void Realloc_OfACachedSizeBlock_GrowsInPlace_WhenTheHeapBlockAboveIsFree() =>
        OnANewThread(GrowInPlaceAboveACachedSizeBlock);

    private void GrowInPlaceAboveACachedSizeBlock()
    {
        // docs/heap.md, realloc: "Growing: in place when the upper neighbour is free and the two
        // together are large enough". The caches change where small blocks come from, not that.
        nint[] run = AllocateAdjacent(2, 3000);  // a block, and a guard right above it
        nint small = Lib.Realloc(run[0], 100);   // shrunk in place to a cached size...
        Assert.True(small == run[0], $"setup: realloc(0x{run[0]:x}, 100) moved the block to 0x{small:x}");
        ulong above = HeapContract.HeaderOf(small) + HeapContract.BlockSize(100);
        Assert.NotNull(FreeBlockAt(above));      // ...and its tail freed into the heap above it
        MemoryChecks.Fill(small, 100, 9);

        nint grown = Lib.Realloc(small, 200);

        Assert.True(grown == small, $"realloc(0x{small:x}, 200) moved the block to 0x{grown:x} although the heap block above it is free");
        MemoryChecks.AssertFilled(grown, 100, 9, "the grown block");
        AssertHeapSound();                       // (AllocateAdjacent's blocks are freed at the end)
    }

    private void RefillsStartSmallAndDouble()
    {
        // docs/heap.md, "Thread caches": a bin's first refill carves two blocks, each later
        // one twice as many, up to half the bin's capacity and one more (a bin holds up to
        // 8 KiB, between 8 and 128 blocks), fewer only when the first fit holds fewer.
        const ulong Request = 200;
        ulong block = HeapContract.BlockSize(Request);
        ulong full = 1 + Math.Clamp(8192 / block, 8, 128) / 2;   // 224-byte blocks: 1 + 36 / 2
        Lib.Free(Lib.Malloc(20000));   // room in the thread's arena (20000 is not cached)
        var got = new List<nint>();
        var checkedRefills = new List<string>();
        ulong want = 2;
        for (int i = 0; i < 80; i++)
        {
            var before = ModelOfArena();
            nint p = Lib.Malloc((nuint)Request);
            got.Add(p);
            var after = ModelOfArena();
            if (before.FreeBlocks.SequenceEqual(after.FreeBlocks)) continue;   // served by the bin

            var source = before.FindFit(block, 16)!.Value.Source;
            Assert.Equal(source.Header, HeapContract.HeaderOf(p));
            var rest = after.FreeBlocks.FirstOrDefault(f => f.Header > source.Header && f.Header < source.End);
            ulong taken = (rest.Size != 0 ? rest.Header - source.Header : source.Size) / block;
            if (source.Size >= (want + 2) * block)   // room for a full refill and a rest
            {
                Assert.True(taken == want, $"refill {checkedRefills.Count + 1} took {taken} blocks from {source}; expected {want}");
                checkedRefills.Add($"{taken}");
            }
            want = Math.Min(want * 2, full);
        }
        Assert.True(checkedRefills.Count >= 4, $"only {checkedRefills.Count} refills had room to check: {string.Join(", ", checkedRefills)}");
        got.ForEach(Lib.Free);
        AssertHeapSound();
    }

    private void FreeManyInOrder(bool reverse)
    {
        // Far more blocks than a bin holds, so bins fill and drain back to the heap many times,
        // in address order or its reverse (a drain sorts them and joins neighbours first).
        const int Count = 5000;
        Lib.Free(Lib.Malloc(400_000 / 4));
        var blocks = new nint[Count];
        for (int i = 0; i < Count; i++)
        {
            blocks[i] = Lib.Malloc((nuint)(24 + 8 * (i % 7)));
            MemoryChecks.Fill(blocks[i], 24, (byte)i);
        }
        for (int k = 0; k < Count; k++)
        {
            int i = reverse ? Count - 1 - k : k;
            MemoryChecks.AssertFilled(blocks[i], 24, (byte)i, $"block {i}");
            Lib.Free(blocks[i]);
        }
        AssertHeapSound();
    }

    private void RefillFromTheFirstFit()
    {
        const ulong Request = 200;
        ulong block = HeapContract.BlockSize(Request);
        Lib.Free(Lib.Malloc(5000));   // the thread's arena, with room (5000 is not cached)
        var model = ModelOfArena();
        var fit = model.FindFit(block, 16);
        Assert.NotNull(fit);
        var source = fit.Value.Source;

        nint p = Lib.Malloc((nuint)Request);

        // The caller's block is the one a first-fit request gets: the bottom of the lowest fit.
        Assert.Equal(fit.Value.Header, HeapContract.HeaderOf(p));
        // k blocks went out at once from the bottom of the source; what is left of it (if
        // anything) is the free block right above them.
        var restBlock = ModelOfArena().FreeBlocks.FirstOrDefault(f => f.Header > source.Header && f.Header < source.End);
        ulong taken = restBlock.Size != 0 ? restBlock.Header - source.Header : source.Size;
        Assert.True(taken % block == 0, $"the refill took {taken} bytes from {source}, not a whole number of {block}-byte blocks");
        int count = (int)(taken / block);
        Assert.True(count >= 2, $"the refill took {count} block(s); a bin is refilled with several");

        // The other k − 1 are exactly those the next first-fit requests would get: the blocks
        // directly above, and the next mallocs of that size return them.
        var expected = Enumerable.Range(1, count - 1).Select(i => (ulong)p + (ulong)i * block).ToHashSet();
        var next = Enumerable.Range(1, count - 1).Select(_ => (ulong)Lib.Malloc((nuint)Request)).ToList();
        Assert.True(expected.SetEquals(next),
            $"after the first block at 0x{p:x}, the next {count - 1} mallocs returned [{string.Join(", ", next.Select(a => $"0x{a:x}"))}], " +
            $"not the {count - 1} blocks directly above it");

        Lib.Free(p);
        next.ForEach(a => Lib.Free((nint)a));
        AssertHeapSound();
    }
}
