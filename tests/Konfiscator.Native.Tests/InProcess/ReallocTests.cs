using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>realloc in the default configuration: contents, NULL and zero, failure. (Where blocks
/// go is in PlacementTests; the mapping threshold in ThresholdTests.)</summary>
[Collection(InProcessCollection.Name)]
public sealed class ReallocTests : HeapTest
{
    [Fact]
    public void Realloc_KeepsTheContents_ThroughEverySizeClass()
    {
        ulong[] sizes = [1, 16, 100, 1008, 1009, 5000, 70_000, 131_071, 300_000, 2_000_000, 40_000_000, 500, 0];
        nint p = Keep(Lib.Malloc(1));
        Fill(p, 1, 3);
        ulong current = 1;
        foreach (ulong size in sizes)
        {
            nint q = ReallocKept(p, (nuint)size);
            if (size == 0)
            {
                Assert.Equal(0, q);      // realloc(p, 0) frees p and returns NULL
                break;
            }
            AssertAligned(q, 16, $"realloc(p, {size})");
            Assert.True(Lib.UsableSize(q) >= size);
            AssertFilled(q, Math.Min(current, size), 3, $"realloc from {current} to {size} bytes");
            Fill(q, size, 3);
            p = q;
            current = size;
        }
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(200ul)]
    [InlineData(5000ul)]
    public void Realloc_OfNull_ReturnsWhatMallocWould(ulong size)
    {
        // With the caches on, the block malloc(n) got and free parked is what the next request
        // of that size gets; with them off, first fit gives it again. Either way realloc(NULL, n)
        // must return that address, as malloc(n) would.
        Prime((nuint)size);
        nint viaMalloc = Lib.Malloc((nuint)size);
        Lib.Free(viaMalloc);

        nint viaRealloc = Keep(Lib.Realloc(0, (nuint)size));

        Assert.Equal(viaMalloc, viaRealloc);
    }

    [Theory]
    [InlineData(100ul)]
    [InlineData(3000ul)]
    [InlineData(40_000_000ul)]   // above any mapping threshold: a large block
    public void Realloc_ToZero_ReturnsNull_AndFreesTheBlock(ulong size)
    {
        nint p = Lib.Malloc((nuint)size);
        Fill(p, Math.Min(size, 4096), 1);

        nint result = Lib.Realloc(p, 0);

        Assert.Equal(0, result);
        if (size > 32ul << 20)
            Assert.False(IsMapped(p), "the large block's mapping is still there after realloc(p, 0)");
        else
            Assert.Equal(p, Keep(Lib.Malloc((nuint)size)));   // the freed block is what comes next
    }

    [Theory]
    [InlineData(ulong.MaxValue / 2)]
    [InlineData(ulong.MaxValue - 8)]
    [InlineData(1ul << 47)]
    public void Realloc_ToAHugeSize_ReturnsNullWithEnomem_AndKeepsTheBlock(ulong size)
    {
        nint p = Keep(Lib.Malloc(100));
        Fill(p, 100, 7);

        var (result, errno) = WithErrno(() => ReallocKept(p, (nuint)size));

        Assert.Equal(0, result);
        Assert.Equal(Libc.ENOMEM, errno);
        AssertFilled(p, 100, 7, "the block realloc could not grow");
    }
}
