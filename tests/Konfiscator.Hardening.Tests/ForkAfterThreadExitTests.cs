using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Issue 8, case 1: glibc calls free(NULL) from every exiting thread after its key destructors
/// ran, and gives the next thread the exited one's descriptor. A cache made by that free was
/// inherited by a fork child's new thread, with counters in the parent's stats mapping: SIGSEGV
/// in every child, with or without thread caches.
/// </summary>
public sealed class ForkAfterThreadExitTests
{
    [Theory]
    [InlineData("1")]
    [InlineData("0")]
    public void A_child_starts_a_thread_after_the_parent_joined_one(string tcache)
    {
        var run = Preload.Run(TrialPrograms.Get("fork_after_thread_exit"), [],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = tcache });
        run.Result.AssertSucceeded();
        Assert.Contains("ok: 20 children", run.Result.StdoutText, StringComparison.Ordinal);
    }

    [Fact]
    public void Python_fork_pool_workers_start_threads()
    {
        string python = Tools.Require("python3");
        var run = Preload.Run(python, [RepoPaths.NativeSource("fork_pool_after_threads.py")]);
        run.Result.AssertSucceeded();
        // Each worker call sums len(str(i) * 3) over range(n) for n = 100..119.
        long expected = Enumerable.Range(100, 20).Sum(n => Enumerable.Range(0, n).Sum(i => (long)i.ToString(System.Globalization.CultureInfo.InvariantCulture).Length * 3));
        Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), run.Result.StdoutText.Trim());
    }
}
