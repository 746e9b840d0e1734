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
