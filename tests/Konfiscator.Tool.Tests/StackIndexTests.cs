using Konfiscator.Reader;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The sample tables' index of interned stacks starts at 512 entries and doubles as
/// stacks are added (src/Native/Stats/SampleTables.cs): a program with 400 distinct allocation
/// stacks (native/kstacks.c), each met twice with every allocation sampled, must have each
/// stack interned once, with both of its samples, after the index grew.</summary>
public sealed class StackIndexTests
{
    public StackIndexTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public void Each_of_400_stacks_is_interned_once_with_both_of_its_samples()
    {
        using var work = new TempDir("stacks");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("kstacks.c", work.Path, "-O0", "-fno-inline");
        // Every allocation sampled.
        Artifacts.RunPreloadedToEnd([program], stats.Path, new Dictionary<string, string> { ["KONFISCATOR_SAMPLE_BYTES"] = "1" });

        string segment = Assert.Single(Directory.GetFiles(stats.Path, "*.kstats"));
        var read = SampleReader.Read(segment);
        var table = Assert.IsType<SampleTable>(read.Table);
        // The program's 64-byte blocks: 800 live samples, over stacks that all lead through main.
        var kept = table.Samples.Where(s => s.Size == 64).ToList();
        Assert.Equal(800, kept.Count);
        var byStack = kept.GroupBy(s => s.StackId).ToList();
        Assert.Equal(400, byStack.Count);
        Assert.All(byStack, g => Assert.Equal(2, g.Count()));
        Assert.All(byStack, g => Assert.Equal(2ul, table.Stacks[g.Key].AllocSamples));
    }
}
