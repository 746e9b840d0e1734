using System.Reflection;
using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Reader.Tests;

/// <summary>Shared/StatsSchema.cs is the one table of what each counter is; these check that it
/// covers the layout and is consistent with itself (docs/metrics.md: MetricsDocTests).</summary>
public class StatsSchemaTests
{
    private static List<FigureSchema> Rows() => Enumerable.Range(0, StatsSchema.Rows).Select(StatsSchema.At).ToList();

    /// <summary>The counter indices StatsLayout declares, MallocCalls through CacheReturnBlocks, by name.</summary>
    private static Dictionary<string, int> LayoutCounters()
    {
        var fields = typeof(StatsLayout).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(int)).ToList();
        int first = fields.FindIndex(f => f.Name == nameof(StatsLayout.MallocCalls));
        int last = fields.FindIndex(f => f.Name == nameof(StatsLayout.CacheReturnBlocks));
        Assert.True(first >= 0 && last > first, "StatsLayout's counters are no longer declared MallocCalls .. CacheReturnBlocks");
        return fields.GetRange(first, last - first + 1).ToDictionary(f => f.Name, f => (int)f.GetRawConstantValue()!);
    }

    [Fact]
    public void Every_counter_of_the_layout_has_exactly_one_row()
    {
        var rows = Rows();
        foreach (var (name, counter) in LayoutCounters())
            Assert.True(rows.Count(r => r.Counter == counter) == 1, $"StatsLayout.{name} ({counter}) needs exactly one row in StatsSchema");
        Assert.Equal(rows.Count, rows.Select(r => r.Counter).Distinct().Count());
        Assert.All(rows, r => Assert.InRange(r.Counter, 0, StatsLayout.HistogramFirst - 1));
        Assert.Equal(-1, StatsSchema.At(StatsSchema.Rows).Counter);
    }

    [Fact]
    public void Rows_are_consistent_and_served_names_are_unique_metric_names()
    {
        var rows = Rows();
        foreach (var r in rows)
        {
            // Process-wide figures are read from slot 0, and only they are.
            Assert.Equal(r.Scope == FigureScope.Process, r.Merge == SlotMerge.ProcessSlot);
            Assert.False(string.IsNullOrEmpty(r.Help), $"row of counter {r.Counter} has no help text");
            if (r.Name is null) continue;
            Assert.Matches("^[a-z][a-z0-9_]*$", r.Name);
            // Prometheus conventions: counters end in _total; gauges never do.
            Assert.Equal(r.Kind == FigureKind.Counter, r.Name.EndsWith("_total", StringComparison.Ordinal));
        }
        var names = rows.Where(r => r.Name is not null).Select(r => r.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal(names, Figures.All.Select(f => f.Name));
    }

    [Fact]
    public void Histogram_buckets_are_counters_summed_over_slots()
    {
        for (int c = StatsLayout.HistogramFirst; c < StatsLayout.CountersPerSlot; c++)
        {
            var f = StatsSchema.Of(c);
            Assert.Equal((c, FigureKind.Counter, SlotMerge.Sum, (string?)null), (f.Counter, f.Kind, f.Merge, f.Name));
            Assert.True(Figures.IsMonotonic(c));
        }
    }
}
