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

    [GeneratedRegex(@"alone_before=(-?\d+) alone_after=(-?\d+) heap_check=(-?\d+)")]
    private static partial Regex Figures();
}
