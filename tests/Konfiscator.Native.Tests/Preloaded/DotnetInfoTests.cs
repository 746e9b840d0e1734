using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>`dotnet --info`: the host, hostfxr, the runtime and the SDK's managed code all
/// running on the library. Its output has parts that vary between runs, so the test compares the
/// exit status and the ".NET SDK:" section, which must name the SDK version.</summary>
public sealed class DotnetInfoTests
{
    [Fact]
    public void DotnetInfo_ReportsTheSameSdk_AsWithoutTheLibrary()
    {
        string dotnet = Tools.Require("dotnet");
        var environment = new Dictionary<string, string?>
        {
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
        };

        var baseline = ChildProcess.Run(dotnet, ["--info"], environment: environment).AssertSucceeded();
        var run = Preload.Run(dotnet, ["--info"], environment: environment);

        Assert.Equal(baseline.ExitCode, run.Result.ExitCode);
        var expected = SdkSection(baseline.StdoutText);
        Assert.Contains(expected, line => System.Text.RegularExpressions.Regex.IsMatch(line, @"^\s*Version:\s+\d+\.\d+\.\d+"));
        Assert.Equal(expected, SdkSection(run.Result.StdoutText));
        run.AssertRan("dotnet");
    }

    /// <summary>The lines from ".NET SDK:" to the next blank line.</summary>
    private static List<string> SdkSection(string output)
    {
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int start = lines.FindIndex(l => l.TrimStart().StartsWith(".NET SDK", StringComparison.Ordinal));
        Assert.True(start >= 0, $"no .NET SDK section in:\n{output}");
        return lines.Skip(start).TakeWhile(l => l.Trim().Length > 0).ToList();
    }
}
