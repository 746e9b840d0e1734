using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>calloc and reallocarray: zeroed memory and n × size overflow.</summary>
[Collection(InProcessCollection.Name)]
public sealed class CallocTests : HeapTest
{
    [Theory]
    [InlineData(1ul, 1ul)]
    [InlineData(10ul, 100ul)]
    [InlineData(4000ul, 1ul)]
    [InlineData(1ul, 65536ul)]
    [InlineData(3ul, 100_000ul)]      // 300 000 bytes: a large block, or from the heap once the threshold rose
    public void Calloc_ReturnsZeroedMemory_EvenWhereGarbageWas(ulong count, ulong size)
    {
        ulong bytes = count * size;
        // Dirty the memory that is about to be handed out again (a parked block for the sizes
        // of the thread caches, the first fit for the others).
        Prime((nuint)bytes);
        nint dirty = Lib.Malloc((nuint)bytes);
        Fill(dirty, bytes, 0xCD);
        Lib.Free(dirty);

        nint p = Keep(Lib.Calloc((nuint)count, (nuint)size));

        AssertAligned(p, 16, $"calloc({count}, {size})");
        Assert.True(Lib.UsableSize(p) >= bytes);
        AssertZero(p, bytes, $"calloc({count}, {size})");
    }

    /// <summary>calloc of a cached size takes the block on top of its bin, as malloc would
    /// (its own path since issue 9's thirteenth round, not the general one), zeroes every
    /// usable byte of it, and the thread's count of cached bytes stays what a walk finds.</summary>
    [Theory]
    [InlineData(1ul, 24ul)]
    [InlineData(10ul, 100ul)]
    [InlineData(4ul, 256ul)]      // 1 024 bytes: the last bin's requests
    public void Calloc_OfACachedSize_TakesTheBinsTopBlock_ZeroesIt_AndKeepsTheCachedBytesExact(ulong count, ulong size) =>
        OnANewThread(() =>
        {
            ulong bytes = count * size;
            nint p = Lib.Malloc((nuint)bytes);
            ulong usable = Lib.UsableSize(p);
            Fill(p, usable, 0xEE);
            Lib.Free(p);                              // on top of its bin

            nint c = Keep(Lib.Calloc((nuint)count, (nuint)size));

            Assert.Equal(p, c);
            AssertZero(c, usable, $"calloc({count}, {size}) of the block freed into its bin");
            var (walked, counted) = Lib.CachedBytes();
            Assert.Equal(walked, counted);
        });

    [Theory]
    [InlineData(0ul, 10ul)]
    [InlineData(10ul, 0ul)]
    [InlineData(0ul, 0ul)]
    public void Calloc_OfZeroBytes_ReturnsUniquePointers(ulong count, ulong size)
    {
        nint a = Keep(Lib.Calloc((nuint)count, (nuint)size));
        nint b = Keep(Lib.Calloc((nuint)count, (nuint)size));
        AssertAligned(a, 16, "calloc");
        AssertAligned(b, 16, "calloc");
        Assert.NotEqual(a, b);
    }

    public static TheoryData<ulong, ulong> OverflowingProducts => new()
    {
        { ulong.MaxValue, 2 },
        { 2, ulong.MaxValue },
        { 1ul << 32, 1ul << 32 },
        { ulong.MaxValue / 2 + 1, 2 },
        { 3, ulong.MaxValue / 3 + 1 },
        { ulong.MaxValue, ulong.MaxValue },
    };

    [Theory]
    [MemberData(nameof(OverflowingProducts))]
    public void Calloc_WhenCountTimesSizeOverflows_ReturnsNullWithEnomem(ulong count, ulong size)
    {
        var (p, errno) = WithErrno(() => Lib.Calloc((nuint)count, (nuint)size));

        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);
    }

    [Theory]
    [MemberData(nameof(OverflowingProducts))]
    public void ReallocArray_WhenCountTimesSizeOverflows_ReturnsNullWithEnomem_AndKeepsTheBlock(ulong count, ulong size)
    {
        nint p = Keep(Lib.Malloc(100));
        Fill(p, 100, 9);

        var (result, errno) = WithErrno(() => Lib.ReallocArray(p, (nuint)count, (nuint)size));

        Assert.Equal(0, result);
        Assert.Equal(Libc.ENOMEM, errno);
        AssertFilled(p, 100, 9, "the block reallocarray refused to resize");
        Assert.True(Lib.UsableSize(p) >= 100);
    }

    [Fact]
    public void ReallocArray_ResizesLikeRealloc()
    {
        nint p = Lib.ReallocArray(0, 4, 25);   // NULL: a malloc of 100 bytes
        AssertAligned(p, 16, "reallocarray(NULL, 4, 25)");
        Fill(p, 100, 3);

        nint q = Keep(Lib.ReallocArray(p, 50, 40));

        AssertAligned(q, 16, "reallocarray(p, 50, 40)");
        Assert.True(Lib.UsableSize(q) >= 2000);
        AssertFilled(q, 100, 3, "reallocarray's copy");
    }
}
