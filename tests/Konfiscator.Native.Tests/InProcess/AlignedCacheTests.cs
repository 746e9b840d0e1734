using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Aligned requests of cached sizes with the thread caches on (src/Native/Heap/AlignedCache.cs,
/// docs/heap.md "Thread caches"): an aligned block already in the bin of its size is taken
/// back without the heap; otherwise (A up to 1024) the block size is rounded up to whole
/// alignments and the block comes from that size's bin, refilled with a run of such blocks
/// that the heap places as one aligned block, so that all of them are aligned. With the caches
/// off the heap's own rule places every call (the model test and the hardening test's `verify`
/// runs check that).
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
    [InlineData(1024ul, 40ul)]
    public void AnAlignedRequestWithNoAlignedBlockCached_IsServedFromAnAlignedRunOfItsRoundedSize(ulong alignment, ulong size) =>
        OnANewThread(() =>
        {
            // The block size rounded up to whole alignments: in a run of such blocks placed with
            // its first payload aligned, every payload is aligned.
            Lib.Free(Lib.Malloc(20000));   // room in the thread's arena (20000 is not cached)
            ulong block = HeapContract.BlockSize(size);
            ulong rounded = HeapContract.AlignUp(block, alignment);
            var model = ModelOfArena();
            var (_, cachedBefore) = Lib.CachedBytes();

            nint p = Lib.Memalign((nuint)alignment, (nuint)size);

            AssertAligned(p, alignment, $"memalign({alignment}, {size})");
            Assert.True(Lib.UsableSize(p) == rounded - HeapContract.Overhead,
                $"usable size {Lib.UsableSize(p)}: memalign({alignment}, {size}) should get a block of {rounded} bytes (its {block} rounded up to whole alignments)");
            // The rest of the run went to the bin of the rounded size.
            var (walked, counted) = Lib.CachedBytes();
            Assert.Equal(walked, counted);
            ulong added = (ulong)(counted - cachedBefore);
            ulong runBlocks = 1 + added / rounded;
            Assert.True(counted > cachedBefore && added % rounded == 0,
                $"cached bytes {cachedBefore} → {counted} after an aligned refill of {rounded}-byte blocks");
            // The run is one block of the heap, placed by the heap's aligned rule.
            var placement = model.FindFit(runBlocks * rounded, alignment);
            Assert.NotNull(placement);
            Assert.Equal(placement!.Value.Header, HeapContract.HeaderOf(p));
            Fill(p, size, 7);

            // The next requests of the size and alignment take the run's other blocks, nearest
            // first, each aligned, without the heap.
            var before = Lib.FreeBlocks();
            var run = new List<nint> { p };
            for (ulong i = 1; i < runBlocks; i++)
            {
                nint q = Lib.Memalign((nuint)alignment, (nuint)size);
                Assert.True((ulong)q == (ulong)p + i * rounded, $"aligned request {i + 1} returned 0x{q:x}; block {i} of the run is at 0x{(ulong)p + i * rounded:x}");
                AssertAligned(q, alignment, $"memalign({alignment}, {size}), block {i} of the run");
                Fill(q, size, (byte)(7 + i));
                run.Add(q);
            }
            Assert.Equal(before, Lib.FreeBlocks());
            for (int i = 0; i < run.Count; i++) AssertFilled(run[i], size, (byte)(7 + i), $"block {i} of the run");
            AssertHeapSound();

            // A block of the run freed is on top of its bin: the next such request takes it back.
            Lib.Free(run[0]);
            nint again = Lib.Memalign((nuint)alignment, (nuint)size);
            Assert.True(again == run[0], $"memalign({alignment}, {size}) after freeing 0x{run[0]:x} returned 0x{again:x}");
            foreach (nint q in run) Lib.Free(q);
            AssertHeapSound();
        });

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
                    cached.Add(lib.Malloc((nuint)(units * HeapContract.Unit - HeapContract.Overhead)));
            }
            var fillers = new List<nint>();
            for (int i = 0; i < 64 && lib.FreeBlocks().Length > 0; i++)
            {
                // The rest of the region in heap blocks (above the cached sizes, below the
                // mapping threshold), the last one exactly what is left.
                ulong left = lib.FreeBlocks().Max(f => f.Size);
                ulong take = left > 102 * 1024 ? 100 * 1024 : left;
                fillers.Add(lib.Malloc((nuint)(take - HeapContract.Overhead)));
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
            // larger, from the bins of their rounded sizes and the aligned runs that refill
            // them, and from the heap (A = 1024 with a rounded size above the bins').
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
