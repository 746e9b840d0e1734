using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Metrics;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>docs/metrics.md is the reference users read: it must name every series served, and
/// every figure of the stats schema (Shared/StatsSchema.cs) as what the schema says it is.</summary>
public class MetricsDocTests
{
    private static string Doc() => File.ReadAllText(Path.Combine(Artifacts.RepoRoot, "docs", "metrics.md"));

    /// <summary>The text of the section under <c>### title</c>, up to the next heading.</summary>
    private static string Section(string doc, string title)
    {
        int start = doc.IndexOf($"\n### {title}\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"docs/metrics.md has no section '### {title}'");
        int end = doc.IndexOf("\n#", start + 1, StringComparison.Ordinal);
        return end < 0 ? doc[start..] : doc[start..end];
    }

    /// <summary>The table row of a metric in a section ("| `konfiscator_x` | ... |"), or null.</summary>
    private static string? Row(string section, string metric) =>
        section.Split('\n').FirstOrDefault(line => line.StartsWith($"| `{metric}`", StringComparison.Ordinal)
                                                   || line.StartsWith($"| `{metric}{{", StringComparison.Ordinal));

    [Fact]
    public void Metrics_doc_lists_every_served_family()
    {
        string doc = Doc();
        var served = Figures.All.Select(f => f.MetricName)
            .Concat(Figures.Ratios.Select(r => r.MetricName))
            .Concat([Figures.Prefix + Figures.RequestSizeName, Figures.Prefix + Figures.ProcessesName,
                     Figures.Prefix + Figures.ExitedName, Figures.Prefix + Figures.ReadErrorsName, BuildInfo.Name]);
        var missing = served.Where(name => !doc.Contains($"`{name}", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "docs/metrics.md does not list: " + string.Join(", ", missing));
    }

    [Fact]
    public void Metrics_doc_lists_every_schema_figure_under_its_kind_with_its_group_rule()
    {
        string doc = Doc();
        string counters = Section(doc, "Counters"), gauges = Section(doc, "Gauges");
        var named = Enumerable.Range(0, StatsSchema.Rows).Select(StatsSchema.At).Where(f => f.Name is not null).ToList();
        Assert.NotEmpty(named);
        var problems = new List<string>();
        foreach (var figure in named)
        {
            string metric = Figures.Prefix + figure.Name;
            string own = figure.Kind == FigureKind.Counter ? counters : gauges;
            string other = figure.Kind == FigureKind.Counter ? gauges : counters;
            string? row = Row(own, metric);
            if (row is null)
                problems.Add($"{metric} ({figure.Kind}) is not in the table of ### {(figure.Kind == FigureKind.Counter ? "Counters" : "Gauges")}");
            if (Row(other, metric) is not null)
                problems.Add($"{metric} ({figure.Kind}) is listed under the other kind too");
            // The gauges' table says how a group adds up: "maximum" exactly for the schema's Max.
            if (row is not null && figure.Kind == FigureKind.Gauge
                && row.Contains("maximum", StringComparison.Ordinal) != (figure.Aggregation == GroupAggregation.Max))
                problems.Add($"{metric}: the group value in the doc does not say {figure.Aggregation}");
        }
        Assert.True(problems.Count == 0, "docs/metrics.md and Shared/StatsSchema.cs disagree:\n" + string.Join("\n", problems));
    }
}
