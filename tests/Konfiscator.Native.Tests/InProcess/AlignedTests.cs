using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>memalign, posix_memalign, aligned_alloc, valloc and pvalloc.</summary>
[Collection(InProcessCollection.Name)]
public sealed class AlignedTests : HeapTest
{
    private const int MaxShift = 20;   // alignments 1 B .. 1 MiB
    private static readonly ulong s_page = (ulong)Environment.SystemPageSize;

    public static TheoryData<int> Shifts()
    {
        var data = new TheoryData<int>();
        for (int shift = 0; shift <= MaxShift; shift++)
            data.Add(shift);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shifts))]
    public void Memalign_AlignsToEveryPowerOfTwo(int shift)
    {
        ulong alignment = 1ul << shift;
        foreach (ulong size in new ulong[] { 0, 1, 100, 5000, 70_000 })
        {
            nint p = Keep(Lib.Memalign((nuint)alignment, (nuint)size));
            AssertAlignedBlock(p, alignment, size, $"memalign({alignment}, {size})");
        }
    }

    [Theory]
    [MemberData(nameof(Shifts))]
    public void PosixMemalign_AlignsToEveryPowerOfTwoMultipleOf8_AndRejectsSmallerOnes(int shift)
    {
        ulong alignment = 1ul << shift;
        foreach (ulong size in new ulong[] { 0, 1, 100, 5000, 70_000 })
        {
            int error = Lib.PosixMemalign(out nint p, (nuint)alignment, (nuint)size);
            if (alignment < 8)
            {
                // 1, 2 and 4 are powers of two but not multiples of sizeof(void*).
                Assert.Equal(Libc.EINVAL, error);
                continue;
            }
            Assert.Equal(0, error);
            Keep(p);
            AssertAlignedBlock(p, alignment, size, $"posix_memalign({alignment}, {size})");
        }
    }

    [Theory]
    [MemberData(nameof(Shifts))]
    public void AlignedAlloc_AlignsToEveryPowerOfTwo(int shift)
    {
        ulong alignment = 1ul << shift;
        // C11 asks for a size that is a multiple of the alignment.
        foreach (ulong size in new[] { alignment, 3 * alignment, HeapContract.AlignUp(100, alignment) })
        {
            nint p = Keep(Lib.AlignedAlloc((nuint)alignment, (nuint)size));
            AssertAlignedBlock(p, alignment, size, $"aligned_alloc({alignment}, {size})");
        }
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(1ul)]
    [InlineData(2ul)]
    [InlineData(4ul)]
    [InlineData(12ul)]
    [InlineData(24ul)]
    [InlineData(40ul)]
    [InlineData(48ul)]
    [InlineData(100ul)]
    [InlineData(1000ul)]
    [InlineData(3ul * 4096)]
    [InlineData((1ul << 20) + 8)]
    [InlineData(ulong.MaxValue)]
    public void PosixMemalign_WithAnAlignmentThatIsNotAPowerOfTwoMultipleOf8_ReturnsEinval(ulong alignment)
    {
        int error = Lib.PosixMemalign(out nint p, (nuint)alignment, 64);
        if (error == 0)
            Lib.Free(p);
        Assert.Equal(Libc.EINVAL, error);
    }

    [Theory]
    [InlineData(16ul, ulong.MaxValue / 2)]
    [InlineData(64ul, ulong.MaxValue / 2)]
    [InlineData(4096ul, ulong.MaxValue - 100)]
    [InlineData(1ul << 20, 1ul << 47)]
    public void PosixMemalign_WithAHugeSize_ReturnsEnomem(ulong alignment, ulong size)
    {
        int error = Lib.PosixMemalign(out nint p, (nuint)alignment, (nuint)size);
        if (error == 0)
            Lib.Free(p);
        Assert.Equal(Libc.ENOMEM, error);
    }

    [Theory]
    [InlineData(64ul, ulong.MaxValue / 2)]
    [InlineData(4096ul, ulong.MaxValue - 100)]
    [InlineData(1ul << 20, 1ul << 47)]
    public void Memalign_AndAlignedAlloc_WithAHugeSize_ReturnNullWithEnomem(ulong alignment, ulong size)
    {
        var (p, errno) = WithErrno(() => Lib.Memalign((nuint)alignment, (nuint)size));
        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);

        ulong roundSize = size / alignment * alignment;
        (p, errno) = WithErrno(() => Lib.AlignedAlloc((nuint)alignment, (nuint)roundSize));
        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);
    }

    [Theory]
    [InlineData(32ul)]
    [InlineData(256ul)]
    [InlineData(4096ul)]
    [InlineData(64ul * 1024)]
    public void AlignedRequests_WithAlignmentUpTo64KiB_StayInTheArena(ulong alignment)
    {
        nint p = Keep(Lib.Memalign((nuint)alignment, 100));
        AssertAligned(p, alignment, $"memalign({alignment}, 100)");
        Assert.True(InHeap(p), $"memalign({alignment}, 100) = 0x{p:x} is in no region of the arena");
    }

    [Theory]
    [InlineData(128ul * 1024)]
    [InlineData(256ul * 1024)]
    [InlineData(1024ul * 1024)]
    public void AlignedRequests_WithAlignmentAbove64KiB_GetTheirOwnMapping(ulong alignment)
    {
        nint p = Keep(Lib.Memalign((nuint)alignment, 100));
        AssertAligned(p, alignment, $"memalign({alignment}, 100)");
        Assert.False(InHeap(p), $"memalign({alignment}, 100) = 0x{p:x} lies in a region of the arena");
    }

    [Theory]
    [InlineData(1ul)]
    [InlineData(100ul)]
    [InlineData(4096ul)]
    [InlineData(5000ul)]
    [InlineData(70_000ul)]
    [InlineData(300_000ul)]
    public void Valloc_IsPageAligned(ulong size)
    {
        nint p = Keep(Lib.Valloc((nuint)size));
        AssertAlignedBlock(p, s_page, size, $"valloc({size})");
    }

    [Theory]
    [InlineData(1ul)]
    [InlineData(100ul)]
    [InlineData(4096ul)]
    [InlineData(4097ul)]
    [InlineData(70_000ul)]
    [InlineData(300_000ul)]
    public void Pvalloc_IsPageAligned_AndRoundsTheSizeUpToAPage(ulong size)
    {
        nint p = Keep(Lib.Pvalloc((nuint)size));
        ulong rounded = HeapContract.AlignUp(size, s_page);
        AssertAlignedBlock(p, s_page, rounded, $"pvalloc({size})");
    }

    [Theory]
    [InlineData(ulong.MaxValue / 2)]
    [InlineData(ulong.MaxValue - 100)]   // rounding up to a page overflows
    [InlineData(1ul << 47)]
    public void Valloc_AndPvalloc_WithAHugeSize_ReturnNullWithEnomem(ulong size)
    {
        var (p, errno) = WithErrno(() => Lib.Valloc((nuint)size));
        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);

        (p, errno) = WithErrno(() => Lib.Pvalloc((nuint)size));
        Assert.Equal(0, p);
        Assert.Equal(Libc.ENOMEM, errno);
    }

    private void AssertAlignedBlock(nint p, ulong alignment, ulong size, string what)
    {
        AssertAligned(p, Math.Max(alignment, 16), what);
        Assert.True(Lib.UsableSize(p) >= size, $"{what}: malloc_usable_size = {Lib.UsableSize(p)}");
        if (size > 0)
        {
            // Writable from the first byte to the last.
            unsafe
            {
                ((byte*)p)[0] = 1;
                ((byte*)p)[size - 1] = 2;
            }
        }
        AssertHeapSound();
    }
}
