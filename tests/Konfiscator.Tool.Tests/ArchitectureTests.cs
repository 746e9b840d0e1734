using System.Reflection;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>docs/architecture.md: dependencies point one way. The tool references the Reader and
/// the Bench engine; neither of those references the tool or each other. And the names every
/// side must spell alike are spelt once, in src/Shared (StatsSchema.Names.cs).</summary>
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

    [Fact]
    public void Settings_and_file_names_are_spelt_only_in_the_schema()
    {
        string[] names =
        [
            StatsSchema.PublishVariable, StatsSchema.DirectoryVariable, StatsSchema.ThreadCacheVariable,
            StatsSchema.SampleBytesVariable, StatsSchema.LeaksVariable, StatsSchema.ShowStatsVariable,
            StatsSchema.SegmentSuffix, StatsSchema.ExporterPidFile, StatsSchema.DefaultDirectoryPrefix,
        ];
        string src = Path.Combine(Artifacts.RepoRoot, "src");
        string shared = Path.Combine(src, "Shared") + Path.DirectorySeparatorChar;
        var spelt = new List<string>();
        foreach (string file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(Artifacts.RepoRoot, file);
            if (file.StartsWith(shared, StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal)
                || relative.Contains("/obj/", StringComparison.Ordinal))
                continue;
            int number = 0;
            foreach (string line in File.ReadLines(file))
            {
                number++;
                // Code only: a comment may name a setting (it explains; it is not read).
                string code = line.TrimStart().StartsWith("//", StringComparison.Ordinal) ? "" : line.Split(" // ")[0];
                foreach (string name in names.Where(n => code.Contains(n, StringComparison.Ordinal)))
                    spelt.Add($"{relative}:{number}: {name}");
            }
        }
        Assert.True(spelt.Count == 0, "spell these through StatsSchema (src/Shared/StatsSchema.Names.cs):\n" + string.Join("\n", spelt));
    }
}
