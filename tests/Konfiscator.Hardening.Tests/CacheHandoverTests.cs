using System.Text.RegularExpressions;
using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// A thread's cache handed over at its exit (docs/heap.md, "Thread exit and fork";
/// docs/performance/small-objects.md, "Larson"): a thread that ends leaves its cache parked at
/// its arena, and the next thread of that arena takes it over with its blocks, instead of every
/// exit draining every bin into the heap and every new thread refilling its bins from it. The
/// blocks stay counted as cached while parked, and malloc_trim gives them back.
/// </summary>
public sealed partial class CacheHandoverTests
{
    [Fact]
    public void NextThreadOfTheArena_TakesOverTheCache_CountedWhileParked_TrimGivesItBack()
    {
        const int rounds = 10;
        var run = Preload.Run(TrialPrograms.Get("cache_handover"), [rounds.ToString()]);
        var result = run.Result.AssertSucceeded();
        var m = Figures().Match(result.StdoutText);
        Assert.True(m.Success, $"unexpected output\n{result.Describe()}");
        Assert.Equal(rounds, int.Parse(m.Groups[2].Value));
        Assert.True(m.Groups[1].Value == rounds.ToString(),
            $"only {m.Groups[1].Value} of {rounds} threads got, at their first malloc, the block the thread before them freed last\n{result.Describe()}");
        Assert.True(m.Groups[3].Value == rounds.ToString(),
            $"with a cache parked, the cached bytes walked and counted agreed only {m.Groups[3].Value} of {rounds} times\n{result.Describe()}");
        Assert.True(m.Groups[4].Value == "1",
            $"blocks were still cached after malloc_trim, or none were before it\n{result.Describe()}");
    }

    [GeneratedRegex(@"handover=(\d+) of (\d+) agree=(\d+) of \d+ trimmed=([01])")]
    private static partial Regex Figures();
}
