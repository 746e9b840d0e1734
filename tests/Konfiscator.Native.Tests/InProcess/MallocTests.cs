using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>malloc, free and malloc_usable_size: what holds in any configuration.</summary>
[Collection(InProcessCollection.Name)]
public sealed class MallocTests : HeapTest
{
    [Fact]
    public void Malloc_Zero_ReturnsUniqueNonNullPointers()
    {
        var pointers = Enumerable.Range(0, 200).Select(_ => Keep(Lib.Malloc(0))).ToList();

        foreach (nint p in pointers)
        {
            AssertAligned(p, 16, "malloc(0)");
            // A 32-byte block, 24 usable; 40 usable only if it absorbed a 16-byte rest.
            Assert.Contains(Lib.UsableSize(p), new nuint[] { 24, 40 });
        }
        Assert.Equal(pointers.Count, pointers.Distinct().Count());
        AssertNoOverlap(pointers);
    }

    [Fact]
    public void Malloc_EveryPointerIs16ByteAligned_AndBlocksDoNotOverlap()
    {
        var random = new Random(20240611);
        var sizes = Enumerable.Range(0, 1100).Select(n => (nuint)n)
            .Concat(Enumerable.Range(0, 200).Select(_ => (nuint)random.Next(1100, 300_000)));
        var pointers = new List<nint>();
        foreach (nuint size in sizes)
        {
            nint p = Keep(Lib.Malloc(size));
            AssertAligned(p, 16, $"malloc({size})");
            Assert.True(Lib.UsableSize(p) >= size, $"malloc_usable_size(malloc({size})) = {Lib.UsableSize(p)}");
            Fill(p, size, (byte)size);
            pointers.Add(p);
        }
        AssertNoOverlap(pointers);
        for (int i = 0; i < pointers.Count; i++)
            AssertFilled(pointers[i], (ulong)i < 1100 ? (ulong)i : 0, (byte)i, "a block after all the others were written");
        AssertHeapSound();
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(1ul)]
    [InlineData(15ul)]
    [InlineData(16ul)]
    [InlineData(17ul)]
    [InlineData(100ul)]
    [InlineData(1000ul)]
    [InlineData(1024ul)]
    [InlineData(1009ul)]
    [InlineData(8ul)]
    [InlineData(9ul)]
    [InlineData(24ul)]
    [InlineData(25ul)]
    [InlineData(1032ul)]
    [InlineData(1033ul)]
    [InlineData(4080ul)]
    [InlineData(131071ul)]
    public void MallocUsableSize_IsTheBlockSizeMinus8(ulong request)
    {
        // The block is max(32, round_up(n + 8, 16)) bytes, or 16 more when it absorbed a rest
        // too small to stay free (which one, PlacementTests predicts from the arena); its
        // payload runs 8 bytes into the next block's header.
        ulong block = HeapContract.BlockSize(request);
        Lib.ReleaseHeld();   // a block this thread freed earlier could serve 4080 (HeldBlockTests)

        nint p = Keep(Lib.Malloc((nuint)request));

        Assert.Contains(Lib.UsableSize(p), new[] { (nuint)(block - HeapContract.Overhead), (nuint)(block + HeapContract.Unit - HeapContract.Overhead) });
    }

    [Fact]
    public void EveryUsableByte_IsTheProgramsToWrite_AcrossFreesMergesAndReallocs()
    {
        // A block's last 8 usable bytes are the next block's header's first half, which the heap
        // writes and reads only while the block is free (docs/heap.md, "Blocks"). Every usable
        // byte of many neighbouring blocks is written, and blocks are freed, merged, carved
        // again and resized among them: every byte of a live block must stay the program's.
        var random = new Random(20261203);
        var live = new List<(nint P, ulong Usable, byte Seed)>();
        byte seed = 1;
        nuint Pick() => random.Next(4) switch
        {
            0 => (nuint)random.Next(1, 64),          // the bins' sizes
            1 => (nuint)random.Next(64, 1100),
            2 => (nuint)random.Next(1100, 8000),     // held blocks
            _ => (nuint)random.Next(8000, 100_000),  // the heap
        };
        for (int step = 0; step < 4000; step++)
        {
            int op = random.Next(10);
            if (live.Count == 0 || op < 5)
            {
                nint p = Lib.Malloc(Pick());
                ulong usable = Lib.UsableSize(p);
                Fill(p, usable, seed);
                live.Add((p, usable, seed++));
            }
            else if (op < 8)
            {
                int i = random.Next(live.Count);
                var (p, usable, s) = live[i];
                AssertFilled(p, usable, s, "a block's usable bytes before its free");
                Lib.Free(p);
                live.RemoveAt(i);
            }
            else
            {
                int i = random.Next(live.Count);
                var (p, usable, s) = live[i];
                AssertFilled(p, usable, s, "a block's usable bytes before a realloc");
                nuint size = Pick();
                nint q = Lib.Realloc(p, size);
                AssertFilled(q, Math.Min(usable, (ulong)size), s, "the bytes a realloc keeps");
                ulong now = Lib.UsableSize(q);
                Fill(q, now, seed);
                live[i] = (q, now, seed++);
            }
        }
        foreach (var (p, usable, s) in live)
        {
            AssertFilled(p, usable, s, "a block's usable bytes at the end");
            Lib.Free(p);
        }
        AssertHeapSound();
    }

    [Fact]
    public void MallocUsableSize_OfNull_IsZero()
    {
        Assert.Equal((nuint)0, Lib.UsableSize(0));
    }

    [Fact]
    public void Free_OfNull_DoesNothing()
    {
        var before = Lib.FreeBlocks();
        Lib.Free(0);
        Lib.CFree(0);
        Assert.Equal(before, Lib.FreeBlocks());
    }

    private void AssertNoOverlap(IEnumerable<nint> pointers)
    {
        var spans = pointers.Select(p => (Start: (ulong)p, End: (ulong)p + Lib.UsableSize(p))).OrderBy(s => s.Start).ToList();
        for (int i = 1; i < spans.Count; i++)
        {
            Assert.True(spans[i - 1].End <= spans[i].Start,
                $"blocks overlap: 0x{spans[i - 1].Start:x}+{spans[i - 1].End - spans[i - 1].Start} and 0x{spans[i].Start:x}");
        }
    }
}
