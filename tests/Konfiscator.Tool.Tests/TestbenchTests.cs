using System.Diagnostics;
using System.Text.RegularExpressions;
using Konfiscator.Reader;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The testbench (testbench/): the local loop really runs, and the files the
/// Docker side uses are valid and name only metrics the exporter serves.</summary>
public partial class TestbenchTests
{
    private static string Testbench => Path.Combine(Artifacts.RepoRoot, "testbench");

    [ArtifactsFact]
    public void Run_local_drives_the_whole_loop_through_a_real_prometheus()
    {
        ArtifactsCheck.RequireBuilt();
        var (status, output) = Run(Path.Combine(Testbench, "run-local.sh"), TimeSpan.FromSeconds(180), "--no-build");
        Assert.True(status == 0, $"run-local.sh exited {status}:\n{output}");
        Assert.Contains("the whole loop works", output);
        Assert.Matches(@"konfiscator_malloc_total\{command=""konf-driver""\} = [1-9]", output);
    }

    [NeedsProgramFact("docker-compose", "Debian's docker-compose package")]
    public void Compose_file_is_accepted_by_docker_compose()
    {
        var (status, output) = Run("docker-compose", TimeSpan.FromSeconds(60),
            "-f", Path.Combine(Testbench, "compose.yaml"), "config", "--quiet");
        Assert.True(status == 0, $"docker-compose config exited {status}:\n{output}");
    }

    [Fact]
    public void Alert_rules_are_accepted_by_promtool()
    {
        var (status, output) = Run("promtool", TimeSpan.FromSeconds(60),
            "check", "rules", Path.Combine(Testbench, "prometheus", "alerts.yml"));
        Assert.True(status == 0, $"promtool check rules exited {status}:\n{output}");
    }

    [Fact]
    public void Dashboard_and_alerts_use_only_metrics_the_exporter_serves()
    {
        var served = Figures.All.Select(f => f.MetricName)
            .Concat([Figures.Prefix + Figures.RequestSizeName + "_bucket", Figures.Prefix + Figures.ProcessesName,
                     Figures.Prefix + Figures.ExitedName, Figures.Prefix + Figures.ReadErrorsName])
            .ToHashSet();
        string dashboard = File.ReadAllText(Path.Combine(Testbench, "grafana", "dashboards", "konfiscator.json"));
        System.Text.Json.JsonDocument.Parse(dashboard).Dispose(); // valid JSON for Grafana's provisioning
        string alerts = File.ReadAllText(Path.Combine(Testbench, "prometheus", "alerts.yml"));
        var used = MetricName().Matches(dashboard + alerts).Select(m => m.Value).ToHashSet();
        Assert.NotEmpty(used);
        Assert.Empty(used.Except(served));
    }

    [GeneratedRegex(@"konfiscator_[a-z_]+[a-z]")]
    private static partial Regex MetricName();

    private static (int Status, string Output) Run(string program, TimeSpan timeout, params string[] args)
    {
        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in args) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new Xunit.Sdk.XunitException($"cannot run `{program}` ({e.Message}); README's Prerequisites list it, .ci/run installs it");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new Xunit.Sdk.XunitException($"{program} did not finish in {timeout}");
            }
            return (process.ExitCode, stdout.Result + stderr.Result);
        }
    }
}
