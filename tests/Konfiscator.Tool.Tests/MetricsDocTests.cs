using Konfiscator.Reader;
using Konfiscator.Tool.Metrics;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>docs/metrics.md is the reference users read: it must name every series served.</summary>
public class MetricsDocTests
{
    [Fact]
    public void Metrics_doc_lists_every_served_family()
    {
        string doc = File.ReadAllText(Path.Combine(Artifacts.RepoRoot, "docs", "metrics.md"));
        var served = Figures.All.Select(f => f.MetricName)
            .Concat(Figures.Ratios.Select(r => r.MetricName))
            .Concat([Figures.Prefix + Figures.RequestSizeName, Figures.Prefix + Figures.ProcessesName,
                     Figures.Prefix + Figures.ExitedName, Figures.Prefix + Figures.ReadErrorsName, BuildInfo.Name]);
        var missing = served.Where(name => !doc.Contains($"`{name}", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "docs/metrics.md does not list: " + string.Join(", ", missing));
    }
}
