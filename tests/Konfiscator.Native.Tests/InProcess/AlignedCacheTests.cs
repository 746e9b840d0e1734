using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Aligned requests of cached sizes with the thread caches on (src/Native/Heap/AlignedCache.cs,
/// docs/heap.md "Thread caches"): an aligned block already in the bin of its size is taken
/// back without the heap; otherwise the aligned block is cut from a padded block of the cache
/// (size + A + 16 bytes) as the heap would cut it, and the gaps before and after it are parked
/// in their bins. With the caches off the heap's own rule places every call (the model test and
/// the hardening test's `verify` runs check that).
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class AlignedCacheTests : HeapTest
{
    // An instance of its own: no other test's threads free blocks into its arenas, so no
    // refill here adopts blocks from their remote lists into the bins these tests predict.
    private static readonly Lazy<LibKonfiscator> s_own = new(() => LibKonfiscator.LoadFresh(threadCache: true));

    private protected override LibKonfiscator Lib => s_own.Value;

    [Theory]
    [InlineData(64ul, 100ul)]
    [InlineData(256ul, 24ul)]
    [InlineData(1024ul, 1000ul)]
    public void AnAlignedBlockFreed_IsTakenBackByTheNextAlignedRequestOfItsSize_WithoutTheHeap(ulong alignment, ulong size) =>
        OnANewThread(() =>
        {
            Lib.Free(Lib.Malloc(20000));   // room in the thread's arena (20000 is not cached)
            nint p = Lib.Memalign((nuint)alignment, (nuint)size);
            AssertAligned(p, alignment, $"memalign({alignment}, {size})");
            Fill(p, size, 3);
            Lib.Free(p);
            var before = Lib.FreeBlocks();

            nint again = Lib.Memalign((nuint)alignment, (nuint)size);

            Assert.True(again == p, $"memalign({alignment}, {size}) after freeing 0x{p:x} (aligned, on top of its bin) returned 0x{again:x}");
            Assert.Equal(before, Lib.FreeBlocks());
            Fill(again, size, 4);
            AssertFilled(again, size, 4, "the block taken back");
            Lib.Free(again);
            AssertHeapSound();
        });

    [Theory]
    [InlineData("memalign", 8ul)]
    [InlineData("memalign", 16ul)]
    [InlineData("posix_memalign", 8ul)]
    [InlineData("posix_memalign", 16ul)]
    [InlineData("aligned_alloc", 16ul)]
    public void AnAlignmentEveryBlockHas_IsServedFromTheBinAsMallocIs(string call, ulong alignment) =>
        OnANewThread(() =>
        {
            const ulong Size = 96;   // a multiple of every alignment here (aligned_alloc)
            nint p = Lib.Malloc((nuint)Size);
            Lib.Free(p);
            nint again = call switch
            {
                "memalign" => Lib.Memalign((nuint)alignment, (nuint)Size),
                "aligned_alloc" => Lib.AlignedAlloc((nuint)alignment, (nuint)Size),
                _ => Lib.PosixMemalign(out nint q, (nuint)alignment, (nuint)Size) == 0 ? q : 0,
            };
            Assert.True(again == p, $"{call}({alignment}, {Size}) after freeing 0x{p:x} returned 0x{again:x}, not the block on top of its bin");
            Fill(again, Size, 5);
            AssertFilled(again, Size, 5, $"the block from {call}");
            Lib.Free(again);
        });

    [Theory]
    [InlineData(64ul, 100ul)]
    [InlineData(256ul, 100ul)]
    [InlineData(128ul, 500ul)]
    [InlineData(32ul, 1ul)]
    public void AnAlignedRequestWithNoAlignedBlockCached_IsCutFromAPaddedBlock_AndItsGapsAreCached(ulong alignment, ulong size) =>
        OnANewThread(() =>
        {
            // A new thread's bins are empty: the padded block (the block size + A + 16 bytes)
            // is the first block of its bin's refill, the lowest free block that fits it.
            Lib.Free(Lib.Malloc(20000));
            ulong block = HeapContract.BlockSize(size);
            ulong padded = block + alignment + HeapContract.HeaderBytes;
            var source = ModelOfArena().FindFit(padded, HeapContract.Unit)!.Value.Source;
            // A refill that takes the whole free block gives a 16-byte rest with it.
            ulong taken = source.Size - padded == HeapContract.Unit ? source.Size : padded;
            ulong start = source.Header, end = start + taken;
            ulong header = HeapContract.AlignUp(start + HeapContract.HeaderBytes, alignment) - HeapContract.HeaderBytes;
            if (header - start == HeapContract.Unit) header += alignment;   // a gap before is 0 or a block

            nint p = Lib.Memalign((nuint)alignment, (nuint)size);

            AssertAligned(p, alignment, $"memalign({alignment}, {size})");
            Assert.Equal(header, HeapContract.HeaderOf(p));
            Fill(p, size, 7);
            ulong tail = end - (header + block);
            Assert.True(Lib.UsableSize(p) == block - HeapContract.HeaderBytes + (tail == HeapContract.Unit ? tail : 0),
                $"usable size {Lib.UsableSize(p)} of a {block}-byte block with a {tail}-byte rest after it");
            var gaps = new List<nint>();
            // Each gap is parked in the bin of its size, so the next malloc of that size gets it
            // (the gap after was parked last: of equal sizes, it is on top), or, when that bin is
            // full (blocks other threads freed to this arena are adopted into the bins on a
            // refill), freed into the heap.
            if (tail >= HeapContract.MinBlockBytes)
                AssertGapKept(header + block, tail, gaps);
            if (header != start)
                AssertGapKept(start, header - start, gaps);
            foreach (nint gap in gaps) Fill(gap, Lib.UsableSize(gap), 9);
            AssertFilled(p, size, 7, "the aligned block, after its gaps were handed out");
            var (walked, counted) = Lib.CachedBytes();
            Assert.Equal(walked, counted);
            AssertHeapSound();
            foreach (nint gap in gaps) Lib.Free(gap);
            Lib.Free(p);
        });

    private void AssertGapKept(ulong header, ulong blockBytes, List<nint> taken)
    {
        if (FreeBlockAt(header) is { } free)
        {
            Assert.True(free.End >= header + blockBytes, $"the {blockBytes}-byte gap at 0x{header:x} is only partly free in the heap: {free}");
            return;
        }
        nint q = Lib.Malloc((nuint)(blockBytes - HeapContract.HeaderBytes));
        taken.Add(q);
        Assert.True((ulong)q == header + HeapContract.HeaderBytes,
            $"malloc({blockBytes - HeapContract.HeaderBytes}) returned 0x{q:x}; the {blockBytes}-byte gap of the aligned cut, not free in the heap, is at 0x{header + HeapContract.HeaderBytes:x}");
    }

    [Fact]
    public void AnAlignedRequestThatFindsNoRoomInTheHeap_FirstTakesBackTheThreadsCachedBlocks()
    {
        // docs/heap.md: before an arena maps a region, the calling thread's cached blocks of it
        // (64 KiB or more) go back into the heap, and the search is made again; the aligned
        // search too. Here the arena's one region holds nothing free but what this thread's
        // bins hold: a memalign on the heap's path must find its room there, not in a new region.
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        OnANewThread(() =>
        {
            var cached = new List<nint>();
            for (ulong units = 50; units <= 65; units++)
            {
                // Four blocks of each of 16 sizes near 1 KiB: with the refills' leftovers, six a
                // bin once freed, fewer than a bin holds (so none goes back to the heap yet).
                for (int i = 0; i < 4; i++)
                    cached.Add(lib.Malloc((nuint)(units * HeapContract.Unit - HeapContract.HeaderBytes)));
            }
            var fillers = new List<nint>();
            for (int i = 0; i < 64 && lib.FreeBlocks().Length > 0; i++)
            {
                // The rest of the region in heap blocks (above the cached sizes, below the
                // mapping threshold), the last one exactly what is left.
                ulong left = lib.FreeBlocks().Max(f => f.Size);
                ulong take = left > 102 * 1024 ? 100 * 1024 : left;
                fillers.Add(lib.Malloc((nuint)(take - HeapContract.HeaderBytes)));
            }
            Assert.Empty(lib.FreeBlocks());
            foreach (nint p in cached) lib.Free(p);
            Assert.Empty(lib.FreeBlocks());
            var regions = lib.Regions();
            Assert.Single(regions);

            nint aligned = lib.Memalign(4096, 5000);

            AssertAligned(aligned, 4096, "memalign(4096, 5000)");
            Assert.True(lib.Regions().Length == 1 && regions[0].Contains((ulong)aligned),
                $"memalign(4096, 5000) = 0x{aligned:x} with {lib.Regions().Length} regions; the thread's bins held the room for it in the one region {regions[0]}");
            Fill(aligned, 5000, 3);
            AssertFilled(aligned, 5000, 3, "the aligned block");
            lib.Free(aligned);
            foreach (nint p in fillers) lib.Free(p);
            Assert.Equal(0, lib.HeapCheck());
        });
    }

    [Fact]
    public void MixedAlignedAndPlainRequests_KeepEveryBlockIntact_AndTheCachedBytesRight() =>
        OnANewThread(() =>
        {
            // Every path at once: aligned blocks from their own bins, from bins one unit
            // larger, cut from padded blocks (gaps parked or freed into the heap once their
            // bins are full), and from the heap (A = 1024: no padded block is cached).
            var random = new Random(8);
            ulong[] alignments = [32, 64, 128, 256, 512, 1024];
            var live = new List<(nint P, ulong Size, ulong Alignment, byte Seed)>();
            for (int round = 0; round < 6000; round++)
            {
                if (live.Count > 0 && random.Next(100) < 45)
                {
                    int i = random.Next(live.Count);
                    var (p, size, alignment, seed) = live[i];
                    AssertFilled(p, size, seed, $"block of round {round}, aligned to {alignment}");
                    Lib.Free(p);
                    live[i] = live[^1];
                    live.RemoveAt(live.Count - 1);
                    continue;
                }
                ulong request = (ulong)random.Next(1, 1025);
                ulong align = random.Next(3) == 0 ? 16 : alignments[random.Next(alignments.Length)];
                nint q = align == 16 ? Lib.Malloc((nuint)request) : Lib.Memalign((nuint)align, (nuint)request);
                AssertAligned(q, align, $"memalign({align}, {request})");
                Assert.True(Lib.UsableSize(q) >= request, $"usable size {Lib.UsableSize(q)} for a request of {request}");
                byte s = (byte)random.Next(256);
                Fill(q, request, s);
                live.Add((q, request, align, s));
                if (round % 1000 == 999)
                {
                    AssertHeapSound();
                    var (walked, counted) = Lib.CachedBytes();
                    Assert.Equal(walked, counted);
                }
            }
            foreach (var (p, size, alignment, seed) in live)
            {
                AssertFilled(p, size, seed, $"block aligned to {alignment}, at the end");
                Lib.Free(p);
            }
            AssertHeapSound();
        });
}
