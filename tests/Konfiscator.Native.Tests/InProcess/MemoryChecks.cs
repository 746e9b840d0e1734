using System.Runtime.InteropServices;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>Reading and writing the memory the library hands out, and asking the kernel whether
/// an address is still mapped.</summary>
internal static unsafe class MemoryChecks
{
    /// <summary>Writes a recognisable pattern into a payload.</summary>
    public static void Fill(nint p, ulong length, byte seed)
    {
        var span = new Span<byte>((void*)p, checked((int)length));
        for (int i = 0; i < span.Length; i++)
            span[i] = Expected(seed, i);
    }

    public static void AssertFilled(nint p, ulong length, byte seed, string what)
    {
        var span = new ReadOnlySpan<byte>((void*)p, checked((int)length));
        for (int i = 0; i < span.Length; i++)
        {
            if (span[i] != Expected(seed, i))
                Assert.Fail($"{what}: byte {i} of 0x{p:x} is 0x{span[i]:x2}, expected 0x{Expected(seed, i):x2}");
        }
    }

    public static void AssertZero(nint p, ulong length, string what)
    {
        var span = new ReadOnlySpan<byte>((void*)p, checked((int)length));
        int index = span.IndexOfAnyExcept((byte)0);
        Assert.True(index < 0, $"{what}: byte {index} of 0x{p:x} is not zero");
    }

    /// <summary>Whether the page holding <paramref name="p"/> is mapped: mincore(2) fails with
    /// ENOMEM for a range that is not.</summary>
    public static bool IsMapped(nint p)
    {
        ulong page = (ulong)Environment.SystemPageSize;
        byte vector;
        nint pageStart = (nint)((ulong)p & ~(page - 1));
        return Libc.MinCore(pageStart, (nuint)page, &vector) == 0 || Marshal.GetLastPInvokeError() != Libc.ENOMEM;
    }

    /// <summary>Whether an address lies in a region of any arena, the heap (as opposed to a large
    /// block's own mapping). Not only the calling thread's arena: its cache may hand it a block
    /// of another arena (a cache adopted from an exited thread keeps its blocks), and whether it
    /// does depends on which tests ran on the thread before.</summary>
    public static bool InHeap(LibKonfiscator lib, nint p) => lib.AllRegions().Any(r => r.Contains((ulong)p));

    private static byte Expected(byte seed, int i) => (byte)(seed + i * 7 + (i >> 8));
}
