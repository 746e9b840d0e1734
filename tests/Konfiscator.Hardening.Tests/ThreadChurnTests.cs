using System.Text.RegularExpressions;
using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Issue 8, case 2: every exiting thread made a new cache in its last free(NULL) and kept it:
/// 2 000 rounds of 50 threads grew the resident size from 1.9 to 192 MB and used all 256 stats
/// thread slots. Every exiting thread's state must go back for the next one.
/// </summary>
public sealed partial class ThreadChurnTests
{
    /// <summary>Growth allowed between the end of the first round and the end: thread stacks
    /// glibc caches and the heap's own retained region, far below what one cache per thread
    /// (several KiB each, with their bins' blocks) over thousands of threads comes to.</summary>
    private const long AllowedGrowthKb = 8 << 10;

    [Theory]
    // 100 000 threads, 50 at a time: the trial's case at full size (about 6 s on a loaded
    // machine of two cores; glibc: 4.5 s).
    [InlineData(2000, 50, "1")]
    // 40 000 more, 10 at a time and without thread caches.
    [InlineData(4000, 10, "0")]
    public void ShortThreads_KeepResidentMemoryAndThreadSlotsBounded(int rounds, int threads, string tcache)
    {
        var run = Preload.Run(TrialPrograms.Get("thread_churn"), [rounds.ToString(), threads.ToString()],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = tcache });
        var result = run.Result.AssertSucceeded();
        var m = Figures().Match(result.StdoutText);
        Assert.True(m.Success, $"unexpected output\n{result.Describe()}");
        long first = long.Parse(m.Groups[1].Value), last = long.Parse(m.Groups[2].Value), slots = long.Parse(m.Groups[3].Value);

        Assert.True(last - first < AllowedGrowthKb,
            $"resident memory grew from {first} KiB to {last} KiB over {rounds * threads} threads\n{result.Describe()}");
        Assert.True(slots >= 1, $"the process published no stats segment to read the thread slots from\n{result.Describe()}");
        // At most `threads` workers and the main thread are alive at once, and a joined thread
        // has given its slot back.
        Assert.True(slots <= threads + 1,
            $"{slots} stats thread slots were handed out for at most {threads + 1} threads alive at once\n{result.Describe()}");
    }

    [GeneratedRegex(@"rss_after_first_round_kb=(\d+) rss_at_end_kb=(\d+) thread_slots_used=(-?\d+)")]
    private static partial Regex Figures();
}
