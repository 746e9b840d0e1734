using System.Runtime.InteropServices;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Native;

/// <summary>A free block as konfiscator_debug_free_blocks reports it.</summary>
/// <param name="Header">Address of the block's header.</param>
/// <param name="Size">The whole block in bytes, header included.</param>
internal readonly record struct FreeBlock(ulong Header, ulong Size)
{
    public ulong End => Header + Size;

    public override string ToString() => $"[0x{Header:x} +{Size}]";
}

/// <summary>A region as konfiscator_debug_regions reports it.</summary>
/// <param name="First">Address of the region's first block (48 bytes past its start).</param>
/// <param name="End">Address of its end sentinel, i.e. the end of its last block.</param>
internal readonly record struct Region(ulong First, ulong End)
{
    public bool Contains(ulong address) => address >= First && address < End;

    public override string ToString() => $"[0x{First:x}..0x{End:x})";
}

/// <summary>
/// libkonfiscator.so loaded into the test process with dlopen and called through its exports.
/// Loaded this way (not preloaded) it is a heap of its own beside glibc's: the .NET runtime keeps
/// using glibc, and only the tests' calls reach the library.
/// </summary>
internal sealed unsafe partial class LibKonfiscator
{
    private static readonly Lock s_loadLock = new();
    private static readonly Lazy<string> s_statsDirectory = new(CreateStatsDirectory);
    private static readonly Lazy<LibKonfiscator> s_default = new(() => LoadFresh(threadCache: true));
    private static readonly Lazy<LibKonfiscator> s_withoutThreadCache = new(() => LoadFresh(threadCache: false));

    private readonly delegate* unmanaged<nuint, void*> _malloc;
    private readonly delegate* unmanaged<void*, void> _free;
    private readonly delegate* unmanaged<void*, void> _cfree;
    private readonly delegate* unmanaged<nuint, nuint, void*> _calloc;
    private readonly delegate* unmanaged<void*, nuint, void*> _realloc;
    private readonly delegate* unmanaged<void*, nuint, nuint, void*> _reallocarray;
    private readonly delegate* unmanaged<nuint, nuint, void*> _memalign;
    private readonly delegate* unmanaged<void**, nuint, nuint, int> _posixMemalign;
    private readonly delegate* unmanaged<nuint, nuint, void*> _alignedAlloc;
    private readonly delegate* unmanaged<nuint, void*> _valloc;
    private readonly delegate* unmanaged<nuint, void*> _pvalloc;
    private readonly delegate* unmanaged<void*, nuint> _mallocUsableSize;
    private readonly delegate* unmanaged<int> _heapCheck;
    private readonly delegate* unmanaged<ulong*, nint, nint> _debugFreeBlocks;
    private readonly delegate* unmanaged<ulong*, nint, nint> _debugRegions;
    private readonly delegate* unmanaged<ulong*, nint, nint> _debugAllRegions;
    private readonly delegate* unmanaged<long*, long*, void> _debugCachedBytes;
    private readonly delegate* unmanaged<int> _debugSingleThreaded;
    private readonly delegate* unmanaged<long> _debugReleaseHeld;
    private readonly delegate* unmanaged<long> _debugLookAtBins;

    private readonly nint _handle;

    private LibKonfiscator(string path, nint handle)
    {
        Path = path;
        _handle = handle;
        _malloc = (delegate* unmanaged<nuint, void*>)Export(handle, "malloc");
        _free = (delegate* unmanaged<void*, void>)Export(handle, "free");
        _cfree = (delegate* unmanaged<void*, void>)Export(handle, "cfree");
        _calloc = (delegate* unmanaged<nuint, nuint, void*>)Export(handle, "calloc");
        _realloc = (delegate* unmanaged<void*, nuint, void*>)Export(handle, "realloc");
        _reallocarray = (delegate* unmanaged<void*, nuint, nuint, void*>)Export(handle, "reallocarray");
        _memalign = (delegate* unmanaged<nuint, nuint, void*>)Export(handle, "memalign");
        _posixMemalign = (delegate* unmanaged<void**, nuint, nuint, int>)Export(handle, "posix_memalign");
        _alignedAlloc = (delegate* unmanaged<nuint, nuint, void*>)Export(handle, "aligned_alloc");
        _valloc = (delegate* unmanaged<nuint, void*>)Export(handle, "valloc");
        _pvalloc = (delegate* unmanaged<nuint, void*>)Export(handle, "pvalloc");
        _mallocUsableSize = (delegate* unmanaged<void*, nuint>)Export(handle, "malloc_usable_size");
        _heapCheck = (delegate* unmanaged<int>)Export(handle, "konfiscator_heap_check");
        _debugFreeBlocks = (delegate* unmanaged<ulong*, nint, nint>)Export(handle, "konfiscator_debug_free_blocks");
        _debugRegions = (delegate* unmanaged<ulong*, nint, nint>)Export(handle, "konfiscator_debug_regions");
        _debugAllRegions = (delegate* unmanaged<ulong*, nint, nint>)Export(handle, "konfiscator_debug_all_regions");
        _debugCachedBytes = (delegate* unmanaged<long*, long*, void>)Export(handle, "konfiscator_debug_cached_bytes");
        _debugSingleThreaded = (delegate* unmanaged<int>)Export(handle, "konfiscator_debug_single_threaded");
        _debugReleaseHeld = (delegate* unmanaged<long>)Export(handle, "konfiscator_debug_release_held");
        _debugLookAtBins = (delegate* unmanaged<long>)Export(handle, "konfiscator_debug_look_at_bins");
    }

    /// <summary>
    /// artifacts/lib/libkonfiscator.so as built, in its default configuration, shared by the
    /// in-process tests.
    /// </summary>
    public static LibKonfiscator Default => s_default.Value;

    /// <summary>
    /// A shared instance started with KONFISCATOR_TCACHE=0: no thread caches, so every call is
    /// placed exactly as docs/heap.md says.
    /// </summary>
    public static LibKonfiscator WithoutThreadCache => s_withoutThreadCache.Value;

    public string Path { get; }

    /// <summary>
    /// A new instance of the library with state of its own (arenas, thread caches, the mapping
    /// threshold), started before any other test touched it. Each instance is a private copy of
    /// artifacts/lib/libkonfiscator.so taken now: dlopen maps a file only once, and build.sh
    /// rewrites the artifact in place (cp), which would change the code under a running test host.
    /// </summary>
    /// <param name="threadCache">False starts it with KONFISCATOR_TCACHE=0.</param>
    public static LibKonfiscator LoadFresh(bool threadCache)
    {
        string copy = Snapshot(RepoPaths.RequireLibrary());
        lock (s_loadLock)
        {
            // The library reads its settings when it starts, on its first call: set the
            // variable just around that call. Instances are started one at a time, here, so no
            // other instance can start with it by mistake.
            if (!threadCache)
                Libc.SetEnv("KONFISCATOR_TCACHE", "0", 1);
            // Stats segments of the test process go to a private directory, not the shared one.
            Libc.SetEnv("KONFISCATOR_STATS_DIR", s_statsDirectory.Value, 1);
            try
            {
                var instance = new LibKonfiscator(copy, NativeLibrary.Load(copy));
                instance.Free(instance.Malloc(1));
                return instance;
            }
            finally
            {
                Libc.UnsetEnv("KONFISCATOR_TCACHE");
                Libc.UnsetEnv("KONFISCATOR_STATS_DIR");
            }
        }
    }

    public nint Malloc(nuint size) => (nint)_malloc(size);

    public void Free(nint p) => _free((void*)p);

    public void CFree(nint p) => _cfree((void*)p);

    public nint Calloc(nuint count, nuint size) => (nint)_calloc(count, size);

    public nint Realloc(nint p, nuint size) => (nint)_realloc((void*)p, size);

    public nint ReallocArray(nint p, nuint count, nuint size) => (nint)_reallocarray((void*)p, count, size);

    public nint Memalign(nuint alignment, nuint size) => (nint)_memalign(alignment, size);

    /// <summary>posix_memalign: returns the error number (0 on success).</summary>
    public int PosixMemalign(out nint result, nuint alignment, nuint size)
    {
        void* p = null;
        int error = _posixMemalign(&p, alignment, size);
        result = (nint)p;
        return error;
    }

    public nint AlignedAlloc(nuint alignment, nuint size) => (nint)_alignedAlloc(alignment, size);

    public nint Valloc(nuint size) => (nint)_valloc(size);

    public nint Pvalloc(nuint size) => (nint)_pvalloc(size);

    public nuint UsableSize(nint p) => _mallocUsableSize((void*)p);

    /// <summary>The number of broken heap invariants over all arenas (0 when sound).</summary>
    public int HeapCheck() => _heapCheck();

    /// <summary>konfiscator_debug_single_threaded: true while the heap's locks are plain stores.</summary>
    public bool LocksArePlain() => _debugSingleThreaded() != 0;

    /// <summary>konfiscator_debug_release_held: the calling thread's held blocks (1-32 KiB blocks
    /// it freed, kept back from the heap while the caches are on) go into the heap; their bytes.</summary>
    public long ReleaseHeld() => _debugReleaseHeld();

    /// <summary>konfiscator_debug_look_at_bins: the calling thread looks at its bins now, as it
    /// does every HeapContract.IdleLookEvery slow paths; the bytes given back to the heap.</summary>
    public long LookAtBins() => _debugLookAtBins();

    /// <summary>The bytes the thread caches hold: walked (every Cached block in the heap) and
    /// counted (the konfiscator_cached_bytes figure summed over the stats slots).</summary>
    public (long Walked, long Counted) CachedBytes()
    {
        long walked, counted;
        _debugCachedBytes(&walked, &counted);
        return (walked, counted);
    }

    /// <summary>The calling thread's arena's free blocks, in address order.</summary>
    public FreeBlock[] FreeBlocks() => ReadPairs(_debugFreeBlocks, (a, b) => new FreeBlock(a, b));

    /// <summary>The calling thread's arena's regions, in the order the library lists them.</summary>
    public Region[] Regions() => ReadPairs(_debugRegions, (a, b) => new Region(a, b));

    /// <summary>Every arena's regions (konfiscator_debug_all_regions): where any heap block lies.</summary>
    public Region[] AllRegions() => ReadPairs(_debugAllRegions, (a, b) => new Region(a, b));

    /// <summary>Calls konfiscator_debug_free_blocks as a C caller would, with a caller-owned
    /// buffer (which may be larger than <paramref name="maxPairs"/> pairs, so that a test can see
    /// whether the export writes past max_pairs).</summary>
    public nint RawFreeBlocks(ulong[] buffer, nint maxPairs)
    {
        fixed (ulong* p = buffer)
            return _debugFreeBlocks(p, maxPairs);
    }

    /// <summary>konfiscator_debug_regions with a caller-owned buffer, as <see cref="RawFreeBlocks"/>.</summary>
    public nint RawRegions(ulong[] buffer, nint maxPairs)
    {
        fixed (ulong* p = buffer)
            return _debugRegions(p, maxPairs);
    }

    private static T[] ReadPairs<T>(delegate* unmanaged<ulong*, nint, nint> export, Func<ulong, ulong, T> pair)
    {
        var buffer = new ulong[2 * 256];
        while (true)
        {
            nint count;
            fixed (ulong* p = buffer)
                count = export(p, buffer.Length / 2);
            if (count < 0)
                throw new InvalidOperationException($"debug export returned {count}");
            if (count <= buffer.Length / 2)
            {
                var result = new T[count];
                for (int i = 0; i < count; i++)
                    result[i] = pair(buffer[2 * i], buffer[2 * i + 1]);
                return result;
            }
            // More than fit: ask again with room for all of them (and some growth).
            buffer = new ulong[2 * (count + 64)];
        }
    }

    /// <summary>Copies the library to a private temporary file, deleted when the process exits.</summary>
    private static string Snapshot(string library)
    {
        string copy = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"libkonfiscator-{Environment.ProcessId}-{Guid.NewGuid():N}.so");
        File.Copy(library, copy);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(copy);
        return copy;
    }

    private static string CreateStatsDirectory()
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"konfiscator-inprocess-stats-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(path, recursive: true); }
            catch (IOException) { }
        };
        return path;
    }

    private static nint Export(nint handle, string name)
    {
        if (!NativeLibrary.TryGetExport(handle, name, out nint address))
            Assert.Fail($"libkonfiscator.so does not export `{name}`");
        return address;
    }
}
