using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/single_to_multi.c under the allocator: while glibc says the process has
/// one thread the heap's locks are plain stores, and they are atomic from its first
/// pthread_create on; blocks made alone are then freed by three threads at once, a child forked
/// alone works on its own, and the heap checks sound (Platform/FutexLock.cs).</summary>
public sealed partial class SingleThreadedLockTests
{
    [Fact]
    public void LocksArePlainWhileAlone_AtomicOnceThereAreThreads_AndTheHeapStaysSound()
    {
        var run = Preload.Run(NativePrograms.Instance.SingleToMulti, []);
        run.Result.AssertSucceeded();
        run.AssertRan("single_to_multi");
        var match = Figures().Match(run.Result.StdoutText);
        Assert.True(match.Success, $"unexpected output: {run.Result.StdoutText}");

        Assert.True(match.Groups[1].Value == "1", "a single-threaded process still took the heap's locks with atomics");
        Assert.True(match.Groups[2].Value == "0", "the locks stayed plain stores after the process started a second thread");
        Assert.Equal("0", match.Groups[3].Value);
    }

    /// <summary>tests/native/sole_cache.c: while the process has one thread the fast paths take
    /// the cache the library keeps for it instead of asking pthread_self; in every state (alone,
    /// forked alone, a second thread, the main thread after it, a child forked by the second
    /// thread, a destructor after the last thread's exit) that is the cache the thread's key holds.</summary>
    [Fact]
    public void TheFastPathsFindTheThreadsOwnCache_AloneThreadedForkedAndAtTheLastExit()
    {
        var run = Preload.Run(NativePrograms.Instance.SoleCache, []);
        string output = run.Result.StdoutText;
        run.Result.AssertSucceeded();
        run.AssertRan("sole_cache");

        Assert.Contains("alone fast=own key=own kept=own\n", output);
        Assert.Contains("forked-alone fast=own key=own kept=own\n", output);
        // The library's key destructor ran before this one: no cache, and nothing kept for it.
        Assert.Contains("last-exit fast=0 key=0\n", output);
        // The second thread's first call found the process threaded and dropped the kept cache.
        Assert.Contains("thread fast=own key=own kept=0\n", output);
        Assert.Contains("forked-threaded fast=own key=own kept=", output);
        Assert.Contains("main-threaded fast=own key=own kept=0\n", output);
        Assert.Contains("failures=0\n", output);
    }

    [GeneratedRegex(@"alone_before=(-?\d+) alone_after=(-?\d+) heap_check=(-?\d+)")]
    private static partial Regex Figures();
}
