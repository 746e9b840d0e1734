namespace Konfiscator.Native.Tests.Native;

/// <summary>The numbers of docs/heap.md, in one place.</summary>
internal static class HeapContract
{
    /// <summary>Every size and address in the heap is a multiple of this.</summary>
    public const ulong Unit = 16;
    /// <summary>Where a payload starts above its block.</summary>
    public const ulong HeaderBytes = 16;
    /// <summary>What a block costs beyond its usable bytes: a payload runs 8 bytes into the next
    /// block's header, whose first half is only needed while the block below is free.</summary>
    public const ulong Overhead = 8;
    /// <summary>Where a header keeps its arena's index (a byte, whose top bit says whether the
    /// block below is free).</summary>
    public const int ArenaOffset = 12;
    /// <summary>The smallest block (24 usable bytes); a split leaves no smaller rest.</summary>
    public const ulong MinBlockBytes = 32;
    /// <summary>The largest block the thread caches' bins hold (requests up to 1 032 bytes).</summary>
    public const ulong MaxBinBlockBytes = 1040;
    /// <summary>The largest request the bins serve: the largest bin's usable bytes.</summary>
    public const ulong MaxCachedRequest = MaxBinBlockBytes - Overhead;
    /// <summary>The mapping threshold's starting value: requests of this many bytes or more get
    /// their own mapping (until freed large blocks raise it).</summary>
    public const ulong LargeThreshold = 128 * 1024;
    /// <summary>Aligned requests with a larger alignment get their own mapping.</summary>
    public const ulong MaxHeapAlignment = 64 * 1024;
    public const ulong RegionHeaderBytes = 48;
    public const ulong SentinelBytes = 16;
    public const ulong FirstRegionBytes = 1024 * 1024;

    /// <summary>The block a request of <paramref name="request"/> bytes needs:
    /// max(32, round_up(n + 8, 16)).</summary>
    public static ulong BlockSize(ulong request) => Math.Max(MinBlockBytes, AlignUp(request + Overhead, Unit));

    /// <summary>With the caches on, a thread holds back the blocks above the bins' sizes (1 040
    /// bytes) and below 32 KiB it freed, sorted into size classes eight a doubling, and gives one
    /// back to a request of its class (docs/heap.md, "Held blocks"). For a request whose block is
    /// <paramref name="block"/> bytes: the end of its class, so that a held block it may get is at
    /// least <paramref name="block"/> and below this; null outside the held sizes. Within
    /// [2^j, 2^(j+1)) bytes (j = 10..14) the classes step by 2^(j-3) bytes.</summary>
    public static ulong? HeldClassEnd(ulong block)
    {
        if (block <= MaxBinBlockBytes || block >= 32768) return null;
        ulong step = 128;
        while (block >= step * 16) step *= 2;          // [8·step, 16·step) is the doubling
        return (block / step + 1) * step;
    }

    /// <summary>With the caches on, every this many slow paths (a malloc above the bins, a refill,
    /// an overflow) a thread looks at its bins, and one that did not run empty since the last
    /// look gives half its blocks back to the heap (docs/heap.md, "Idle bins").</summary>
    public const int IdleLookEvery = 8192;

    public static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);

    /// <summary>The header of the block whose payload is <paramref name="payload"/>.</summary>
    public static ulong HeaderOf(nint payload) => (ulong)payload - HeaderBytes;

    /// <summary>The arena of the block whose payload is <paramref name="payload"/>, from its header.</summary>
    public static ushort ArenaOf(nint payload) =>
        (ushort)(System.Runtime.InteropServices.Marshal.ReadByte((nint)HeaderOf(payload) + ArenaOffset) & 0x7F);
}
