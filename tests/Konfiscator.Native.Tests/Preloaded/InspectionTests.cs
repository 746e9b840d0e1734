using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/inspect.c under the allocator: glibc's inspection calls, as a program
/// calls them, answer from Konfiscator's heap (and malloc_stats prints glibc's report).</summary>
public sealed class InspectionTests
{
    [Fact]
    public void GlibcsInspectionCalls_AnswerFromTheHeap_AndMallocStatsPrintsGlibcsReport()
    {
        // Sampling off: a sampled call's stack walk may allocate (libgcc's unwinder caches what
        // it reads), and such a block can keep a region from being wholly free, so malloc_trim's
        // "gives a region back" would depend on where the samples fell.
        var run = Preload.Run(NativePrograms.Instance.Inspect, [],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_SAMPLE_BYTES"] = "0" });

        Assert.True(run.Result.ExitCode == 0, run.Result.StdoutText + run.Result.Stderr);
        Assert.EndsWith("ok\n", run.Result.StdoutText);
        Assert.StartsWith("Arena 0:\nsystem bytes     = ", run.Result.Stderr);
        Assert.Contains("\nTotal (incl. mmap):\nsystem bytes     = ", run.Result.Stderr);
        Assert.Matches(@"in use bytes     = +\d+\n$", run.Result.Stderr);
        run.AssertRan("inspect");
    }
}
