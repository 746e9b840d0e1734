using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.InProcess;

/// <summary>Facts the library's code assumes but no compiler checks: struct sizes against the
/// constants that stand for them, and the export list against the exported methods.</summary>
public sealed partial class LayoutTests
{
    [Fact]
    public unsafe void StructSizes_MatchTheConstantsTheHeapUses()
    {
        string copy = LibKonfiscator.Default.Path;
        nint handle = NativeLibrary.Load(copy);
        var layout = (delegate* unmanaged<ulong*, nint, nint>)NativeLibrary.GetExport(handle, "konfiscator_debug_layout");
        var facts = new ulong[16];
        nint count;
        fixed (ulong* p = facts) count = layout(p, facts.Length);
        Assert.Equal(13, count);
        var (arena, stride, region, regionHeader, block, blockHeader, binsOffset, bin, slot, line) =
            (facts[0], facts[1], facts[2], facts[3], facts[4], facts[5], facts[6], facts[7], facts[8], facts[9]);
        var (firstBin, bins, binsOffsetInCode) = (facts[10], facts[11], facts[12]);

        Assert.True(arena <= stride, $"sizeof(Arena) = {arena} does not fit in Arenas.Stride = {stride}: arenas would overlap");
        Assert.True(stride % line == 0, $"Arenas.Stride = {stride} is not whole cache lines: arenas would share one");
        Assert.Equal(regionHeader, region);   // Regions.HeaderBytes is where the first block starts
        Assert.Equal(blockHeader, block);     // Blocks.HeaderBytes is where the payload starts
        Assert.Equal(0UL, slot % line);       // stats slots never share a cache line

        // The thread cache's bins start on a cache line of their own and none straddles two
        // lines: a bin the fast path reads is one line (ThreadCache.BinsOnOwnLine, Bin's Size).
        Assert.True(firstBin != 0, "the calling thread has no cache to measure the bins on");
        Assert.True(binsOffset % line == 0, $"the first bin is at offset {binsOffset} of the cache: not on a line of its own");
        // The fast paths reach the bins by a constant offset (ThreadCaches.BinsOffset), not
        // through the field: the two must agree.
        Assert.True(binsOffsetInCode == binsOffset,
            $"the heap's code reaches the bins at offset {binsOffsetInCode} of the cache, the field is at {binsOffset}");
        Assert.True(firstBin % line == 0, $"the first bin is at 0x{firstBin:x}: not on a cache line boundary");
        Assert.True(bins > 0 && bin > 0, "no bins");
        for (ulong i = 0; i < bins; i++)
        {
            ulong start = firstBin + i * bin, last = start + bin - 1;
            Assert.True(start / line == last / line, $"bin {i} ({bin} bytes at 0x{start:x}) straddles two cache lines");
        }
    }

    [Fact]
    public void ExportList_NamesExactlyTheExportedMethods_AndTheLibraryExportsThem()
    {
        string source = Path.Combine(RepoPaths.Root, "src", "Native");
        var listed = File.ReadAllLines(Path.Combine(source, "exports.txt"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToHashSet();
        var attributed = Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories)
            // SystemModule's exports are the helpers ILC links against (Rhp*), not the C API.
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/") && !f.Contains("/SystemModule/"))
            .SelectMany(f => RuntimeExport().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value))
            .ToHashSet();
        // The initializer and finalizer the linker names (-init/-fini in the csproj) are entry
        // points of the loader, not of programs: they need not be in the list.
        string project = File.ReadAllText(Path.Combine(source, "Konfiscator.Native.csproj"));
        attributed.ExceptWith(LoaderEntry().Matches(project).Select(m => m.Groups[1].Value));
        Assert.NotEmpty(attributed);

        Assert.Empty(listed.Except(attributed));  // listed but no [RuntimeExport]: a link error at best
        Assert.Empty(attributed.Except(listed));  // exported method missing from the list: invisible to programs
        nint handle = NativeLibrary.Load(LibKonfiscator.Default.Path);
        Assert.All(listed, name => Assert.True(NativeLibrary.TryGetExport(handle, name, out _), $"the library does not export {name}"));
    }

    [GeneratedRegex(@"-Wl,-(?:init|fini),([A-Za-z0-9_]+)")]
    private static partial Regex LoaderEntry();

    [GeneratedRegex(@"\[RuntimeExport\(""([A-Za-z0-9_]+)""\)\]")]
    private static partial Regex RuntimeExport();
}
