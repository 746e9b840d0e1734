using System.Xml.Linq;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>glibc's inspection calls (mallinfo2, mallinfo, malloc_trim, malloc_info, mallopt)
/// answer from the library's own heap (docs/heap.md, "glibc's inspection calls"). Each test loads
/// an instance of its own, so that its figures move only with its own calls.</summary>
[Collection(InProcessCollection.Name)]
public sealed class InspectionTests
{
    private const int KiB = 1024, MiB = 1024 * KiB;

    [Fact]
    public void Mallinfo2_CountsTheBlocksInUse_ExactlyAsTheHeapPlacesThem()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: false);
        var before = lib.Mallinfo2();
        Assert.Equal(before.Arena, before.UordBlks + before.FordBlks);

        var blocks = Enumerable.Range(0, 200).Select(i => lib.Malloc((nuint)(2000 + i))).ToList();
        var during = lib.Mallinfo2();
        // Each block costs its usable bytes and 8 bytes of header, taken from free space or from new regions.
        ulong placed = blocks.Aggregate(0UL, (n, p) => n + lib.UsableSize(p) + HeapContract.Overhead);
        Assert.Equal(before.UordBlks + placed, during.UordBlks);
        Assert.Equal(during.Arena, during.UordBlks + during.FordBlks);
        Assert.True(during.OrdBlks >= 1);
        // The peak is reported in quanta of 1/64 of itself (1 KiB at least: docs/metrics.md), so it
        // may lag what is in use by less than one.
        ulong usable = placed - HeapContract.Overhead * 200, quantum = Math.Max(1024, during.UsmBlks / 64);
        Assert.True(during.UsmBlks + quantum > usable, $"usmblks {during.UsmBlks} more than a quantum ({quantum}) below the {usable} bytes allocated");

        nint large = lib.Malloc(4 * MiB);
        var withLarge = lib.Mallinfo2();
        Assert.Equal(during.Arena, withLarge.Arena); // a large block is not in the regions…
        Assert.True(withLarge.HBlkHd >= during.HBlkHd + 4 * MiB, $"hblkhd {withLarge.HBlkHd} did not grow by 4 MiB"); // …but mapped beside them

        var narrow = lib.Mallinfo();
        Assert.Equal((int)withLarge.Arena, narrow.Arena);
        Assert.Equal((int)withLarge.UordBlks, narrow.UordBlks);
        Assert.Equal((int)withLarge.FordBlks, narrow.FordBlks);
        Assert.Equal((int)withLarge.HBlkHd, narrow.HBlkHd);

        lib.Free(large);
        foreach (nint p in blocks) lib.Free(p);
        var after = lib.Mallinfo2();
        Assert.Equal(before.UordBlks, after.UordBlks);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void MallocTrim_UnmapsWhollyFreeRegions_AndTheHeapStaysSound()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        // Enough 4 KiB blocks for several regions, then all freed: regions become wholly free.
        var blocks = Enumerable.Range(0, 1500).Select(_ => lib.Malloc(4000)).ToList();
        foreach (nint p in blocks) lib.Free(p);
        var before = lib.Mallinfo2();
        Assert.True(before.KeepCost > 0, "no wholly free region was kept after freeing everything");

        Assert.Equal(1, lib.MallocTrim(0));

        var after = lib.Mallinfo2();
        Assert.Equal(0UL, (ulong)after.KeepCost);
        // At least the wholly free regions went; the thread's cached blocks went back to the heap
        // first, so a region holding only those may have gone too.
        Assert.True(after.Arena <= before.Arena - before.KeepCost, $"arena {before.Arena} -> {after.Arena}, keepcost was {before.KeepCost}");
        Assert.Equal(after.Arena, after.UordBlks + after.FordBlks);
        Assert.Equal(0, lib.HeapCheck());
        nint again = lib.Malloc(4000);
        Assert.NotEqual(0, again);
        lib.Free(again);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void MallocInfo_WritesGlibcsXml_WithTheSameFiguresAsMallinfo2()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: false);
        var blocks = Enumerable.Range(0, 50).Select(i => lib.Malloc((nuint)(3000 + 64 * i))).ToList();
        for (int i = 0; i < blocks.Count; i += 2) lib.Free(blocks[i]);
        var info = lib.Mallinfo2();

        var (status, text) = lib.MallocInfo(0);
        Assert.Equal(0, status);
        var root = XDocument.Parse(text).Root!;
        Assert.Equal("malloc", root.Name.LocalName);
        Assert.Equal("1", (string?)root.Attribute("version"));
        Assert.NotEmpty(root.Elements("heap"));
        Assert.All(root.Elements("heap"), h => Assert.NotNull(h.Element("sizes")));
        var rest = root.Elements("total").Single(t => (string?)t.Attribute("type") == "rest");
        Assert.Equal(info.OrdBlks.ToString(), (string?)rest.Attribute("count"));
        Assert.Equal(info.FordBlks.ToString(), (string?)rest.Attribute("size"));
        ulong heapSystem = root.Elements("heap").Select(h => ulong.Parse((string)h.Elements("system").First().Attribute("size")!)).Aggregate(0UL, (a, b) => a + b);
        Assert.Equal((ulong)info.Arena, heapSystem);

        Assert.Equal(-1, lib.MallocInfo(1).Status); // glibc: options must be 0 (EINVAL)
        for (int i = 1; i < blocks.Count; i += 2) lib.Free(blocks[i]);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void Mallopt_MmapThreshold_IsHonouredAndFixed_OtherParametersAreAcceptedAsGlibcDoes()
    {
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        Assert.Equal(1, lib.Mallopt(LibKonfiscator.M_MMAP_THRESHOLD, 64 * KiB));
        nint above = lib.Malloc(80 * KiB);
        Assert.False(MemoryChecks.InHeap(lib, above), "an 80 KiB request must get its own mapping with the threshold at 64 KiB");
        nint below = lib.Malloc(60 * KiB);
        Assert.True(MemoryChecks.InHeap(lib, below), "a 60 KiB request stays in the heap");

        // Freeing a large block does not raise a threshold set by mallopt (glibc's rule).
        nint big = lib.Malloc(1 * MiB);
        lib.Free(big);
        nint stillLarge = lib.Malloc(80 * KiB);
        Assert.False(MemoryChecks.InHeap(lib, stillLarge), "the threshold rose although mallopt fixed it");

        Assert.Equal(0, lib.Mallopt(LibKonfiscator.M_MMAP_THRESHOLD, 64 * MiB)); // above glibc's 32 MiB cap
        Assert.Equal(0, lib.Mallopt(LibKonfiscator.M_MMAP_THRESHOLD, -1));
        Assert.Equal(1, lib.Mallopt(LibKonfiscator.M_TRIM_THRESHOLD, 128 * KiB));
        Assert.Equal(1, lib.Mallopt(LibKonfiscator.M_MMAP_MAX, 0));
        Assert.Equal(1, lib.Mallopt(LibKonfiscator.M_ARENA_MAX, 2));
        Assert.Equal(0, lib.Mallopt(12345, 1));
        foreach (nint p in new[] { above, below, stillLarge }) lib.Free(p);
        Assert.Equal(0, lib.HeapCheck());
    }

    [Fact]
    public void Mallopt_MmapThresholdBelowTheCachedSizes_GivesThoseRequestsMappingsToo()
    {
        // The 1-2 KiB requests have a path of their own to the thread's held blocks (Allocation.
        // AllocateFromHeap); a threshold set below them still decides first, even with a block
        // of the size held.
        var lib = LibKonfiscator.LoadFresh(threadCache: true);
        nint parked = lib.Malloc(1500);
        lib.Free(parked);
        Assert.Equal(1, lib.Mallopt(LibKonfiscator.M_MMAP_THRESHOLD, 1 * KiB));
        nint above = lib.Malloc(1500);
        Assert.False(MemoryChecks.InHeap(lib, above), "a 1 500-byte request must get its own mapping with the threshold at 1 KiB");
        nint below = lib.Malloc(1000);
        Assert.True(MemoryChecks.InHeap(lib, below), "a 1 000-byte request stays in the heap");
        lib.Free(above);
        lib.Free(below);
        Assert.Equal(0, lib.HeapCheck());
    }
}
