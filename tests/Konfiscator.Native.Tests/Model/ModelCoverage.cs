using System.Collections.Concurrent;

namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// How often the model test went down each path of docs/heap.md (a new region, a region given
/// back, a realloc in place, an aligned request leaving a gap...). A model test that passes
/// without ever taking a path proves nothing about it, so the tests require the paths they are
/// meant to cover.
/// </summary>
internal sealed class ModelCoverage
{
    public const string NewRegion = "new region mapped";
    public const string RegionGrew = "region grown in place";
    public const string RegionReleased = "wholly free region unmapped";
    public const string TailTrimmed = "free end of a region given back (malloc_trim)";
    public const string Merged = "free merged with a neighbour";
    public const string RestAbsorbed = "rest below 32 bytes handed out with the block";
    public const string AlignedGap = "aligned request left a free gap above it";
    public const string GrownInPlace = "realloc grew in place";
    public const string ShrunkInPlace = "realloc shrank in place";
    public const string Moved = "realloc moved the block";
    public const string ReallocNull = "realloc(NULL, n)";
    public const string ReallocZero = "realloc(p, 0)";
    public const string Large = "large block (own mapping)";
    public const string BelowRaisedThreshold = "request of 128 KiB or more in the heap (threshold raised)";

    private readonly ConcurrentDictionary<string, int> _counts = new();

    public void Count(string what, int times = 1)
    {
        if (times > 0)
            _counts.AddOrUpdate(what, times, (_, n) => n + times);
    }

    public int this[string what] => _counts.TryGetValue(what, out int n) ? n : 0;

    /// <summary>Fails unless every one of <paramref name="paths"/> was taken at least once.</summary>
    public void AssertCovered(params string[] paths)
    {
        var missing = paths.Where(p => this[p] == 0).ToList();
        Assert.True(missing.Count == 0, $"the model test never exercised: {string.Join("; ", missing)}\ncovered: {this}");
    }

    public override string ToString() => string.Join(", ", _counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}: {kv.Value}"));
}
