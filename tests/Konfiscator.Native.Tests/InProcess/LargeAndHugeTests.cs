using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>Large blocks' own mappings, and requests that cannot be met (NULL with ENOMEM, never
/// a crash). Sizes here are above any mapping threshold (at most 32 MiB), so they are large
/// whatever other tests did to the threshold; the threshold itself is in ThresholdTests.</summary>
[Collection(InProcessCollection.Name)]
public sealed class LargeAndHugeTests : HeapTest
{
    [Theory]
    [InlineData(33ul << 20)]
    [InlineData(40ul << 20)]
    public void AVeryLargeRequest_GetsItsOwnMapping_UnmappedOnFree(ulong size)
    {
        var freeBefore = Lib.FreeBlocks();
        nint p = Lib.Malloc((nuint)size);

        AssertAligned(p, 16, $"malloc({size})");
        Assert.False(InHeap(p), $"malloc({size}) = 0x{p:x} lies in a region of the arena");
        Assert.Equal(freeBefore, Lib.FreeBlocks());
        Assert.True(Lib.UsableSize(p) >= size);
        Fill(p, 1 << 20, 8);
        AssertFilled(p, 1 << 20, 8, "a large block");

        Lib.Free(p);

        Assert.False(IsMapped(p), $"the mapping of the large block 0x{p:x} is still there after free");
    }

    public static TheoryData<ulong> HugeSizes => new()
    {
        ulong.MaxValue,
        ulong.MaxValue - 8,          // n + 16 overflows
        ulong.MaxValue - 4096,
        ulong.MaxValue / 2,
        ulong.MaxValue / 2 + 1,
        1ul << 47,                   // 128 TiB: more than the address space
    };

    [Theory]
    [MemberData(nameof(HugeSizes))]
    public void Malloc_OfAHugeSize_ReturnsNullWithEnomem(ulong size)
    {
        var (p, errno) = WithErrno(() => Lib.Malloc((nuint)size));

        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);
    }

    [Theory]
    [MemberData(nameof(HugeSizes))]
    public void Calloc_OfAHugeSize_ReturnsNullWithEnomem(ulong size)
    {
        var (p, errno) = WithErrno(() => Lib.Calloc(1, (nuint)size));

        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);
    }

    [Fact]
    public void FailedRequests_LeaveTheArenaAsItWas()
    {
        Prime(100);
        var free = Lib.FreeBlocks();
        var regions = Lib.Regions();

        foreach (ulong size in HugeSizes.Cast<object[]>().Select(row => (ulong)row[0]))
        {
            Assert.Equal(0, Lib.Malloc((nuint)size));
            Assert.Equal(0, Lib.Memalign(4096, (nuint)size));
        }

        Assert.Equal(free, Lib.FreeBlocks());
        Assert.Equal(regions, Lib.Regions());
    }
}
