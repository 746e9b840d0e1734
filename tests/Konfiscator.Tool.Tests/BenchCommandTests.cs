using System.Text.Json;
using System.Xml.Linq;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary><c>konfiscator bench</c> as a user runs it: a quick run writes its three reports;
/// bad flags are usage errors. Nothing here is about speed.</summary>
public class BenchCommandTests
{
    [ArtifactsFact]
    public async Task Quick_run_writes_markdown_json_and_svg()
    {
        ArtifactsCheck.RequireBuilt();
        using var dir = new TempDir("kbench");
        var (code, stdout, stderr) = await ToolProcess.RunAsync(
            ["bench", "--quick", "--workloads", "fifo,lifo", "--allocators", "glibc,konfiscator", "--out", dir.Path],
            new Dictionary<string, string?> { ["KONFISCATOR_LIB"] = Artifacts.Library },
            TimeSpan.FromSeconds(120));
        Assert.True(code == 0, $"bench exited {code}\n{stdout}\n{stderr}");
        Assert.Contains("| workload | glibc | konfiscator |", stdout);
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("bench.json")));
        Assert.Equal(JsonValueKind.Object, json.RootElement.ValueKind);
        Assert.Equal("svg", XDocument.Load(dir.File("bench.svg")).Root!.Name.LocalName);
        Assert.Contains("small LIFO", File.ReadAllText(dir.File("bench.md")));
    }

    [Theory]
    [InlineData("--rounds", "0")]
    [InlineData("--workloads", "no-such-workload")]
    [InlineData("--allocators", "no-such-allocator")]
    [InlineData("--library", "no-equals-sign")]
    [InlineData("--library", "mimalloc=/bin/true")]
    [InlineData("--library", "two words=/bin/true")]
    [InlineData("--library", "before=/nonexistent/libkonfiscator.so")]
    public async Task Bad_arguments_are_usage_errors(string flag, string value)
    {
        using var dir = new TempDir("kbench");
        var (code, _, stderr) = await ToolProcess.RunAsync(["bench", "--quick", flag, value, "--out", dir.Path],
            new Dictionary<string, string?> { ["KONFISCATOR_LIB"] = Artifacts.Library }, TimeSpan.FromSeconds(60));
        Assert.Equal(2, code);
        Assert.StartsWith("konfiscator: ", stderr);
        Assert.Contains(value, stderr.Split('\n')[0]);   // the message names what was wrong
    }
}
