using System.Globalization;
using System.Text.RegularExpressions;
using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Issue 8, case 7: two blocks freed, a chosen address written into their first words (where the
/// allocator keeps its links), three mallocs. Unprotected, a malloc returned memory in the
/// program's .bss (thread caches) or one block twice (the heap's free index). The links are
/// mangled and checked (docs/heap.md); the process must stop with SIGABRT and one line
/// `konfiscator: malloc(): corrupted free list (ptr=0x...)` naming one of the two freed blocks.
/// The same with the three blocks asked of memalign: aligned requests look into the same bins
/// and the same index (Heap/AlignedCache.cs), and the line names memalign.
/// </summary>
public sealed partial class UseAfterFreeTests
{
    public static TheoryData<int, string> Cases => new()
    {
        // Thread-cache sizes (smallest, middle, largest bin), then heap blocks: 5 000 bytes
        // as in the trial (with the caches off: on, they are held, below), and 60 000 bytes,
        // below the mapping threshold.
        { 24, "1" }, { 200, "1" }, { 1000, "1" }, { 60000, "1" },
        { 24, "0" }, { 1000, "0" }, { 5000, "0" }, { 60000, "0" },
    };

    public static TheoryData<int, string, int> AlignedCases => new()
    {
        // Cached sizes (the aligned probes of the bin of the block rounded up to whole
        // alignments, docs/heap.md "Thread caches"), then a heap block, at two alignments;
        // 900 bytes at 64 is a block of 960, of the largest bins'.
        { 24, "1", 64 }, { 200, "1", 256 }, { 900, "1", 64 }, { 60000, "1", 64 },
        { 200, "0", 64 }, { 5000, "0", 64 },
    };

    /// <summary>The trial's 5 000 bytes with the caches on: blocks above the bins' sizes and below 32 KiB that a
    /// thread frees are held back in its cache (docs/heap.md, "Held blocks"), listed there, not
    /// linked through their own memory. The words the program writes after the free are its
    /// own data then, which no allocator state is read from: nothing to steer, nothing to stop.
    /// The three requests must get three distinct heap blocks, none in the program's .bss.
    /// A sampled block is freed by the general path, which holds it too: sampling every
    /// allocation ("1") or none ("0") must not change the outcome (a sampled block that went
    /// into the heap instead made this stop, now and then, with the default sampling).</summary>
    [Theory]
    [InlineData(0, "0")]
    [InlineData(0, "1")]
    [InlineData(64, "0")]
    public void PoisonedHeldBlocks_SteerNothing(int alignment, string sampleBytes)
    {
        string[] arguments = alignment == 0 ? ["5000"] : ["5000", alignment.ToString(CultureInfo.InvariantCulture)];
        var run = Preload.Run(TrialPrograms.Get("uaf_poison"), arguments,
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = "1", ["KONFISCATOR_SAMPLE_BYTES"] = sampleBytes });
        var result = run.Result;
        Assert.True(result.ExitCode == 0 && result.StdoutText.Contains("no harm", StringComparison.Ordinal),
            $"expected `no harm` (exit 0)\n{result.Describe()}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PoisonedLinks_StopTheProcessWithOneLine(int size, string tcache) => AssertStops(size, tcache, 0);

    [Theory]
    [MemberData(nameof(AlignedCases))]
    public void PoisonedLinks_StopAlignedRequestsWithOneLine(int size, string tcache, int alignment) =>
        AssertStops(size, tcache, alignment);

    private static void AssertStops(int size, string tcache, int alignment)
    {
        string[] arguments = alignment == 0
            ? [size.ToString(CultureInfo.InvariantCulture)]
            : [size.ToString(CultureInfo.InvariantCulture), alignment.ToString(CultureInfo.InvariantCulture)];
        var run = Preload.Run(TrialPrograms.Get("uaf_poison"), arguments,
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = tcache });
        var result = run.Result;
        Assert.True(result.KilledBy(ChildResult.SIGABRT), $"expected SIGABRT\n{result.Describe()}");

        var freed = Freed().Match(result.StdoutText);
        Assert.True(freed.Success, $"the program did not print its freed blocks\n{result.Describe()}");
        var candidates = new[] { Hex(freed.Groups[1].Value), Hex(freed.Groups[2].Value) };

        var ours = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("konfiscator:", StringComparison.Ordinal)).ToList();
        Assert.True(ours.Count == 1, $"expected exactly one line from the library\n{result.Describe()}");
        var line = Line().Match(ours[0]);
        Assert.True(line.Success, $"unexpected line: {ours[0]}");
        Assert.Equal(alignment == 0 ? "malloc" : "memalign", line.Groups[1].Value);
        Assert.Contains(Hex(line.Groups[2].Value), candidates);
    }

    private static ulong Hex(string digits) => ulong.Parse(digits, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^freed=0x([0-9a-f]+) 0x([0-9a-f]+)$", RegexOptions.Multiline)]
    private static partial Regex Freed();

    [GeneratedRegex(@"^konfiscator: (malloc|memalign)\(\): corrupted free list \(ptr=0x([0-9a-f]+)\)$")]
    private static partial Regex Line();
}
