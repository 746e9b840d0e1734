using System.Text.RegularExpressions;
using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Which arena a new thread gets (docs/heap.md, "Arenas and threads"; docs/performance/memory.md):
/// handed out round robin, a program that keeps replacing its threads (larson) spread its blocks
/// over every arena, each with regions of its own, partly used: 8.8 MiB of peak resident memory
/// where glibc, whose new threads take over a free arena, needs 5.7. A thread started after
/// another one ended must take over the arena it left; threads alive at once keep arenas of
/// their own. A thread whose first call frees a block of an arena no live thread uses takes over
/// that arena: larson's two lanes end and start their threads at the same moment, and by the
/// lowest idle arena alone each lane's new thread took the other lane's arena about half the time.
/// </summary>
public sealed partial class ArenaReuseTests
{
    [Fact]
    public void ThreadStartedAfterAnotherEnded_TakesOverItsArena_ThreadsAliveAtOnceDoNot_FirstFreeChoosesAmongIdle()
    {
        const int rounds = 20;
        var run = Preload.Run(TrialPrograms.Get("arena_reuse"), [rounds.ToString()]);
        var result = run.Result.AssertSucceeded();
        var m = Figures().Match(result.StdoutText);
        Assert.True(m.Success, $"unexpected output\n{result.Describe()}");
        int reused = int.Parse(m.Groups[1].Value), of = int.Parse(m.Groups[2].Value);
        Assert.Equal(rounds - 1, of);
        Assert.True(reused == of,
            $"only {reused} of {of} threads, each started after the one before it ended, took over that thread's arena\n{result.Describe()}");
        Assert.True(m.Groups[3].Value == "1",
            $"two threads alive at once (and the main thread) did not get three different arenas\n{result.Describe()}");
        Assert.True(m.Groups[4].Value == "2",
            $"of two threads whose first call freed a block of an idle arena, only {m.Groups[4].Value} took over that arena\n{result.Describe()}");
    }

    [GeneratedRegex(@"reused=(\d+) of (\d+) distinct=([01]) handoff=(\d) of 2")]
    private static partial Regex Figures();
}
