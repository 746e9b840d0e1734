using System.Globalization;
using System.Text.RegularExpressions;
using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// A poisoned link met by a drain (a bin that overflows gives a run of blocks back to the heap,
/// following their links in one loop: ThreadCaches.TakeChecked), not by a malloc: the process
/// must stop with SIGABRT and one line `konfiscator: free(): corrupted free list (ptr=0x...)`
/// naming one of the poisoned blocks.
/// </summary>
public sealed partial class DrainPoisonTests
{
    [Theory]
    [InlineData(24)]
    [InlineData(200)]
    [InlineData(1000)]
    public void PoisonedLinkInAnOverflowingBin_StopsTheProcessWithOneLine(int size)
    {
        var run = Preload.Run(TrialPrograms.Get("drain_poison"), [size.ToString(CultureInfo.InvariantCulture)]);
        var result = run.Result;
        Assert.True(result.KilledBy(ChildResult.SIGABRT), $"expected SIGABRT\n{result.Describe()}");

        var poisoned = Poisoned().Matches(result.StdoutText)
            .Select(m => ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture))
            .ToHashSet();
        Assert.True(poisoned.Count > 0, $"the program did not print a poisoned block\n{result.Describe()}");

        var ours = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("konfiscator:", StringComparison.Ordinal)).ToList();
        Assert.True(ours.Count == 1, $"expected exactly one line from the library\n{result.Describe()}");
        var line = Line().Match(ours[0]);
        Assert.True(line.Success, $"unexpected line: {ours[0]}");
        Assert.Contains(ulong.Parse(line.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture), poisoned);
    }

    [GeneratedRegex(@"^poisoned=0x([0-9a-f]+)$", RegexOptions.Multiline)]
    private static partial Regex Poisoned();

    [GeneratedRegex(@"^konfiscator: free\(\): corrupted free list \(ptr=0x([0-9a-f]+)\)$")]
    private static partial Regex Line();
}
