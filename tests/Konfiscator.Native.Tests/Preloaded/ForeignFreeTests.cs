using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/foreign_frees.c under the allocator: a small block freed by a thread
/// whose arena did not make it goes home while its arena is a live thread's home (so the
/// freeing thread never writes into a line its owner's blocks share), and is cached where it
/// was freed when no live thread would take it back (docs/heap.md, "Thread caches").</summary>
public sealed partial class ForeignFreeTests
{
    [Fact]
    public void ABlockOfALiveThreadsArena_GoesHome_AndItsOwnerAllocatesItAgain()
    {
        var (bReused, aReused, n) = Run("owner-live");

        Assert.True(bReused == 0, $"the freeing thread got {bReused} of the {n} blocks it freed for another live thread back from its own mallocs");
        Assert.True(aReused > 0, $"the owner got none of its {n} blocks back after the freeing thread ended (its foreign chain never went home)");
    }

    [Fact]
    public void ABlockOfAnArenaWithNoLiveThread_IsCachedWhereItWasFreed()
    {
        var (bReused, _, n) = Run("owner-exited");

        Assert.True(bReused == n, $"the freeing thread got {bReused} of the {n} blocks of an ended thread back; all {n} were expected (nobody else would take them)");
    }

    private static (int BReused, int AReused, int N) Run(string mode)
    {
        var run = Preload.Run(NativePrograms.Instance.ForeignFrees, [mode]);
        run.Result.AssertSucceeded();
        run.AssertRan("foreign_frees");
        var match = Counts().Match(run.Result.StdoutText);
        Assert.True(match.Success, $"unexpected output: {run.Result.StdoutText}");
        return (int.Parse(match.Groups[1].Value), int.Parse(match.Groups[2].Value), int.Parse(match.Groups[3].Value));
    }

    [GeneratedRegex(@"b_reused=(\d+) a_reused=(\d+) n=(\d+)")]
    private static partial Regex Counts();
}
