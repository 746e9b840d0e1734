using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/bin_growth.c under the allocator: a bin doubles when it overflowed and
/// was then emptied with few frees of its size in between (batches larger than the bin), not when
/// it got from full to empty as a random walk (docs/heap.md, "Thread caches"). The walk's bin
/// grew to hold all its 2 000 blocks (190 KiB) before there was a rule; the small bin's walk
/// (16 blocks of 512 bytes) grew to 101 KiB under the rule that counted mallocs instead of
/// frees; the batches' bin must still grow.</summary>
public sealed partial class BinGrowthTests
{
    [Fact]
    public void ABinGrowsForBatchesLargerThanIt_NotForASizeTradedAtRandom()
    {
        var run = Preload.Run(NativePrograms.Instance.BinGrowth, []);
        run.Result.AssertSucceeded();
        run.AssertRan("bin_growth");
        var match = Figures().Match(run.Result.StdoutText);
        Assert.True(match.Success, $"unexpected output: {run.Result.StdoutText}");
        long walk = long.Parse(match.Groups[1].Value), smallWalk = long.Parse(match.Groups[2].Value);
        long batches = long.Parse(match.Groups[3].Value);

        // 2 000 blocks of 224 bytes are 437.5 KiB; a bin that stopped growing holds a few hundred at most.
        Assert.True(walk <= 96 * 1024, $"after a random walk, freeing 2 000 blocks of its size left {walk} bytes in the caches: the bin grew for the walk");
        // 2 000 blocks of 512 bytes are 1 000 KiB; the bin starts with 16 (8 KiB).
        Assert.True(smallWalk <= 64 * 1024, $"after a random walk of 512-byte blocks the caches hold {smallWalk} bytes more: the small bin grew for the walk");
        // Without growth the batches' bin would hold 25 blocks of 320 bytes (8 000 bytes).
        Assert.True(batches >= 64 * 1024, $"after five batches of 3 000 blocks the caches hold {batches} bytes more: the bin did not grow for them");
    }

    [GeneratedRegex(@"walk_cached=(-?\d+) small_walk_cached=(-?\d+) batch_cached=(-?\d+)")]
    private static partial Regex Figures();
}
