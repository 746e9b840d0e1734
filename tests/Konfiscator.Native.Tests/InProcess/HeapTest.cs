using Konfiscator.Native.Tests.Model;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Base of the in-process tests: the library instance under test, helpers that read the calling
/// thread's arena, and the rule that the heap is sound (konfiscator_heap_check() == 0) after
/// every test. Test methods are synchronous, so a test's calls all come from one thread and so
/// one arena (and one thread cache).
/// </summary>
public abstract class HeapTest : IDisposable
{
    /// <summary>Requests up to this size are served by the thread caches' bins when they are on
    /// (blocks of 32 to 1040 bytes); larger ones go to the heap, or below 32 KiB to a block the
    /// thread holds back (docs/heap.md, "Held blocks").</summary>
    private protected const ulong MaxCachedRequest = HeapContract.MaxCachedRequest;

    private readonly List<nint> _toFree = [];

    /// <summary>The instance under test: the default configuration unless a class says otherwise.</summary>
    private protected virtual LibKonfiscator Lib => LibKonfiscator.Default;

    public void Dispose()
    {
        foreach (nint p in _toFree)
            Lib.Free(p);
        AssertHeapSound();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees <paramref name="p"/> when the test ends (before the heap check).</summary>
    private protected nint Keep(nint p)
    {
        _toFree.Add(p);
        return p;
    }

    /// <summary>Frees a pointer that <see cref="Keep"/> registered, now.</summary>
    private protected void FreeNow(nint p)
    {
        Assert.True(_toFree.Remove(p), "freed a pointer the test did not keep");
        Lib.Free(p);
        // Into the heap, where the placement rules see it: a block the thread would hold back
        // (docs/heap.md, "Held blocks") is given back at once, with whatever else it holds.
        Lib.ReleaseHeld();
    }

    /// <summary>
    /// realloc of a kept pointer, keeping the test's own bookkeeping right whatever the library
    /// does (moves the block, frees it, or fails), so that a library that disagrees with the
    /// contract makes the test fail instead of making the cleanup double-free and abort the
    /// test process.
    /// </summary>
    private protected nint ReallocKept(nint p, nuint size)
    {
        Assert.True(_toFree.Remove(p), "realloc of a pointer the test did not keep");
        nint result = Lib.Realloc(p, size);
        if (result != 0)
            _toFree.Add(result);
        else if (size != 0)
            _toFree.Add(p);        // a failed realloc leaves the block as it was
        return result;
    }

    /// <summary>
    /// Makes sure a request of <paramref name="size"/> fits in the arena's existing free space,
    /// so that malloc followed by free leaves the free list exactly as it was. (Without it, a
    /// request that needs a new region leaves that region behind, retained as the arena's one
    /// empty region.)
    /// </summary>
    private protected void Prime(nuint size) => Lib.Free(Lib.Malloc(size));

    /// <summary>A new thread has empty bins, so its first small request is a refill from the heap.
    /// (A thread that ended leaves its cache parked for the next thread of its arena, docs/heap.md
    /// "Thread caches": malloc_trim gives parked caches back first, so that the new thread's are empty.)</summary>
    private protected void OnANewThread(Action test)
    {
        Lib.MallocTrim(0);
        Exception? failure = null;
        string? task = null;
        var thread = new Thread(() =>
        {
            try
            {
                // /proc/thread-self links to /proc/PID/task/TID: gone once the OS thread is.
                task = "/proc/" + new DirectoryInfo("/proc/thread-self").LinkTarget;
                test();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        // Join returns when the managed code is done; the OS thread's key destructors (which give
        // its cache back) may still be running. Wait until the thread is gone (bounded).
        for (int i = 0; i < 1000 && task is not null && Directory.Exists(task); i++) Thread.Sleep(5);
        if (failure is not null)
            throw new Xunit.Sdk.XunitException($"on a new thread: {failure.Message}", failure);
    }

    private protected void AssertHeapSound() => Assert.Equal(0, Lib.HeapCheck());

    /// <summary>The first-fit model of the calling thread's arena as it is now (its held blocks
    /// given back first: <see cref="HeapFreeBlocks"/>).</summary>
    private protected FirstFitModel ModelOfArena() => new(HeapFreeBlocks(), Lib.Regions());

    /// <summary>The free blocks of the calling thread's arena, once the blocks of 1-32 KiB the
    /// thread freed and the caches hold back from the heap (docs/heap.md, "Held blocks") are
    /// in it: what the placement rules act on. With the caches off nothing is held.</summary>
    private protected FreeBlock[] HeapFreeBlocks()
    {
        Lib.ReleaseHeld();
        return Lib.FreeBlocks();
    }

    /// <summary>Runs an allocation call with errno cleared before it and returns errno after.</summary>
    private protected static (nint Result, int Errno) WithErrno(Func<nint> call)
    {
        Libc.Errno = 0;
        nint result = call();
        int errno = Libc.Errno;
        return (result, errno);
    }

    private protected static void AssertAligned(nint p, ulong alignment, string what)
    {
        Assert.True(p != 0, $"{what} returned NULL");
        Assert.True((ulong)p % alignment == 0, $"{what} returned 0x{p:x}, not aligned to {alignment}");
    }

    private protected static void Fill(nint p, ulong length, byte seed) => MemoryChecks.Fill(p, length, seed);

    private protected static void AssertFilled(nint p, ulong length, byte seed, string what) =>
        MemoryChecks.AssertFilled(p, length, seed, what);

    private protected static void AssertZero(nint p, ulong length, string what) => MemoryChecks.AssertZero(p, length, what);

    private protected static bool IsMapped(nint p) => MemoryChecks.IsMapped(p);

    /// <summary>Whether an address lies in the heap (a region of any arena), as opposed to a
    /// large block's own mapping (MemoryChecks.InHeap).</summary>
    private protected bool InHeap(nint p) => MemoryChecks.InHeap(Lib, p);

    /// <summary>The free block of the calling thread's arena that covers <paramref name="address"/>, if any.</summary>
    private protected FreeBlock? FreeBlockAt(ulong address)
    {
        foreach (var block in HeapFreeBlocks())
        {
            if (address >= block.Header && address < block.End)
                return block;
        }
        return null;
    }

    /// <summary>
    /// <paramref name="count"/> blocks of <paramref name="size"/> bytes (more than the thread
    /// caches serve) that lie next to each other in memory, returned in address order, each
    /// exactly BlockSize(size) long. First fit carves each request from the bottom of the lowest
    /// fitting free block, so consecutive equal requests are neighbours, each directly above the
    /// previous one, unless one lands in a leftover hole that fits only one; such strays are
    /// freed afterwards. Fails (rather than allocating on and on) if the library never places
    /// them so.
    /// </summary>
    private protected nint[] AllocateAdjacent(int count, ulong size)
    {
        Assert.True(size > MaxCachedRequest, "adjacent blocks must be larger than the thread caches' sizes");
        ulong block = HeapContract.BlockSize(size);
        var strays = new List<nint>();
        var run = new List<nint>();
        try
        {
            for (int attempt = 0; attempt < 64 * count; attempt++)
            {
                nint next = Lib.Malloc((nuint)size);
                Assert.True(next != 0, $"malloc({size}) returned NULL");
                // The block must be of exactly that size (not one that absorbed a 16-byte rest),
                // or "adjacent" would not mean what the test thinks.
                bool exact = Lib.UsableSize(next) == block - HeapContract.Overhead;
                if (!exact || (run.Count > 0 && (ulong)next != (ulong)run[^1] + block))
                {
                    strays.AddRange(run);
                    run.Clear();
                }
                if (exact)
                    run.Add(next);
                else
                    strays.Add(next);
                if (run.Count == count)
                {
                    foreach (nint p in run)
                        Keep(p);
                    return [.. run];
                }
            }
            Assert.Fail($"{64 * count} calls of malloc({size}) never gave {count} blocks of {block} bytes, each directly above " +
                        $"the previous one, as carving from the bottom of the first fit would (last ones: " +
                        $"{string.Join(", ", strays.TakeLast(4).Concat(run).Select(p => $"0x{p:x}"))})");
            return [];
        }
        finally
        {
            if (run.Count < count)
                strays.AddRange(run);
            foreach (nint p in strays)
                Lib.Free(p);
        }
    }
}
