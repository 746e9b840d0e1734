using CsCheck;
using Konfiscator.Native.Tests.InProcess;

namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// Randomized model test: random sequences of malloc/calloc/memalign/posix_memalign/realloc/free
/// on one thread, each step checked by <see cref="ModelDriver"/>. docs/heap.md promises exact
/// first-fit placement with KONFISCATOR_TCACHE=0 ("the model test runs that way"), so the
/// placement tests use such an instance; the default configuration gets the same sequences with
/// everything but placement checked. Each test loads an instance of its own, so the model knows
/// its mapping threshold from the start. CsCheck shrinks a failure to a short sequence and prints
/// the seed that replays it (CsCheck_Seed=...).
/// </summary>
[Collection(InProcessCollection.Name)]
public sealed class FirstFitModelTests
{
    /// <summary>Many short and medium sequences: every kind of step, in many orders.</summary>
    [Fact]
    public void RandomSequences_WithTheThreadCachesOff_FollowTheFirstFitModel()
    {
        var target = ModelTarget.ExactPlacement();
        string[] paths =
        [
            ModelCoverage.Merged, ModelCoverage.RestAbsorbed, ModelCoverage.AlignedGap,
            ModelCoverage.GrownInPlace, ModelCoverage.ShrunkInPlace, ModelCoverage.Moved,
            ModelCoverage.ReallocNull, ModelCoverage.ReallocZero,
            ModelCoverage.Large, ModelCoverage.BelowRaisedThreshold,
        ];
        var coverage = new ModelCoverage();
        Sample(target, HeapOps.Sequence(20, 500), iterations: 600, coverage);
        // Some paths are rare (a first fit exactly 16 bytes larger than the request, for the
        // rest absorbed): a run of 600 sequences misses one about once in ten. More sequences,
        // a bounded number of times, rather than a test that fails by chance; every one of
        // them is checked against the model all the same.
        for (int more = 0; more < 5 && paths.Any(path => coverage[path] == 0); more++)
            Sample(target, HeapOps.Sequence(20, 500), iterations: 600, coverage);

        coverage.AssertCovered(paths);
    }

    /// <summary>A few long sequences: enough live memory to grow the region, malloc_trim now and
    /// then to give its free end back (or all of it, when wholly free, after which a new region
    /// is mapped).</summary>
    [Fact]
    public void LongSequences_WithTheThreadCachesOff_FollowTheFirstFitModel()
    {
        var target = ModelTarget.ExactPlacement();
        var coverage = Sample(target, HeapOps.Sequence(5000, 5000), iterations: 5);

        coverage.AssertCovered(ModelCoverage.RegionGrew, ModelCoverage.TailTrimmed);
    }

    /// <summary>The default configuration: the thread caches decide where small blocks go, but
    /// every block must keep its bytes, sizes must be right, and the heap must stay sound.</summary>
    [Fact]
    public void RandomSequences_WithThreadCaches_KeepEveryBlockIntactAndTheHeapSound()
    {
        var target = ModelTarget.WithThreadCaches();
        Sample(target, HeapOps.Sequence(20, 500), iterations: 150);
        Sample(target, HeapOps.Sequence(5000, 5000), iterations: 1);
    }

    private static ModelCoverage Sample(ModelTarget target, Gen<HeapOp[]> sequences, int iterations, ModelCoverage? into = null)
    {
        var coverage = into ?? new ModelCoverage();
        sequences.Sample(ops => ModelDriver.Run(target, ops, coverage), iter: iterations, threads: 1, print: Print);
        Assert.Equal(0, target.Lib.HeapCheck());
        return coverage;
    }

    /// <summary>The (shrunk) failing sequence, cut short if long: the seed replays it whole.</summary>
    private static string Print(HeapOp[] ops) =>
        $"{ops.Length} ops: {string.Join("; ", ops.Take(300))}{(ops.Length > 300 ? "; ..." : "")}";
}
