using System.Text.RegularExpressions;
using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Cases of the adversarial trial (issue 8) that the library passed, kept so that they keep
/// passing: 64 threads churning with every block's bytes checked and cross-thread frees, fork
/// from many threads at once, posix_spawn/system/popen loops beside an allocating thread
/// (tests/native/trial_cases.c), and misuse stopping a many-threaded process with one line.
/// </summary>
public sealed partial class TrialCasesThatPassedTests
{
    [Theory]
    [InlineData("churn64", "1")]
    [InlineData("churn64", "0")]
    [InlineData("forks", "1")]
    [InlineData("forks", "0")]
    [InlineData("spawn", "1")]
    public void Trial_case_runs_to_the_end_without_a_message(string mode, string tcache)
    {
        var run = Preload.Run(TrialPrograms.Get("trial_cases"), [mode],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = tcache });
        run.Result.AssertSucceeded();
        Assert.Equal($"{mode}: ok", run.Result.StdoutText.Trim());
        Assert.DoesNotContain("konfiscator:", run.Result.Stderr, StringComparison.Ordinal);
    }

    /// <summary>tests/native/misuse.c's cases, with and without thread caches: still one line
    /// and SIGABRT (MisuseTests in the native tests check every mode with caches on).</summary>
    [Theory]
    [InlineData("double-free", "0", "free", "double free")]
    [InlineData("overwritten-header", "0", "free", "corrupted block header")]
    [InlineData("realloc-after-free", "0", "realloc", "pointer already freed")]
    [InlineData("free-static", "0", "free", "invalid pointer")]
    [InlineData("large-double-free", "1", "free", null)]
    public void Misuse_StillStopsWithOneLine(string mode, string tcache, string call, string? problem)
    {
        var run = Preload.Run(NativePrograms.Instance.Misuse, [mode],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = tcache });
        var result = run.Result;
        Assert.True(result.KilledBy(ChildResult.SIGABRT), $"expected SIGABRT\n{result.Describe()}");
        var ours = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("konfiscator:", StringComparison.Ordinal)).ToList();
        Assert.True(ours.Count == 1, $"expected exactly one line from the library\n{result.Describe()}");
        var m = Line().Match(ours[0]);
        Assert.True(m.Success, $"unexpected line: {ours[0]}");
        Assert.Equal(call, m.Groups["call"].Value);
        if (problem is not null)
            Assert.Equal(problem, m.Groups["what"].Value);
    }

    [GeneratedRegex(@"^konfiscator: (?<call>[a-z_]+)\(\): (?<what>.+) \(ptr=0x[0-9a-f]+\)$")]
    private static partial Regex Line();
}
