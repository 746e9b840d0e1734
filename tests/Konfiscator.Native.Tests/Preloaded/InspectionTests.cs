using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/inspect.c under the allocator: glibc's inspection calls, as a program
/// calls them, answer from Konfiscator's heap (and malloc_stats prints glibc's report).</summary>
public sealed class InspectionTests
{
    [Fact]
    public void GlibcsInspectionCalls_AnswerFromTheHeap_AndMallocStatsPrintsGlibcsReport()
    {
        // Sampling on, as by default: the stack walk allocates nothing (libgcc's unwinder, used
        // before, cached what it read in blocks that could keep a region from being wholly free,
        // and this test ran with sampling off).
        var run = Preload.Run(NativePrograms.Instance.Inspect, []);

        Assert.True(run.Result.ExitCode == 0, run.Result.StdoutText + run.Result.Stderr);
        Assert.EndsWith("ok\n", run.Result.StdoutText);
        Assert.StartsWith("Arena 0:\nsystem bytes     = ", run.Result.Stderr);
        Assert.Contains("\nTotal (incl. mmap):\nsystem bytes     = ", run.Result.Stderr);
        Assert.Matches(@"in use bytes     = +\d+\n$", run.Result.Stderr);
        run.AssertRan("inspect");
    }
}
