using System.Reflection;

namespace Konfiscator.Tool.Tests;

/// <summary>docs/architecture.md: dependencies point one way. The tool references the Reader and
/// the Bench engine; neither of those references the tool or each other.</summary>
public class ArchitectureTests
{
    private static HashSet<string> ProjectReferences(Assembly assembly) =>
        assembly.GetReferencedAssemblies().Select(a => a.Name!)
            .Where(n => n.StartsWith("Konfiscator", StringComparison.Ordinal) || n == "konfiscator").ToHashSet();

    [Fact]
    public void The_tool_depends_on_the_reader_and_the_bench_engine_and_nothing_points_back()
    {
        var tool = typeof(Konfiscator.Tool.ToolPaths).Assembly;
        var reader = typeof(Konfiscator.Reader.Figures).Assembly;
        var bench = typeof(Konfiscator.Bench.BenchmarkRunner).Assembly;

        Assert.Equal(new HashSet<string> { reader.GetName().Name!, bench.GetName().Name! }, ProjectReferences(tool));
        Assert.Empty(ProjectReferences(reader));
        Assert.Empty(ProjectReferences(bench));
    }
}
