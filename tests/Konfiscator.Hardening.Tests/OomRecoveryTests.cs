using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Issue 8, case 8: under an address-space limit (`ulimit -v 400000`, set by the child itself
/// with setrlimit before it executes itself again), fill the heap with small and medium blocks
/// until malloc returns NULL, free everything, then ask for 200 MiB. The library kept some
/// 230 MiB of emptied regions mapped (cached blocks pinned them, one empty region per arena is
/// kept) and the large request failed where glibc's succeeds; a failed mapping now gives back
/// what it can (the thread's cache, wholly free regions, the reservation's tail) and retries once.
/// </summary>
public sealed class OomRecoveryTests
{
    [Theory]
    [InlineData("1")]
    [InlineData("0")]
    public void AfterRunningOutAndFreeingEverything_ALargeRequestSucceeds(string tcache)
    {
        var run = Preload.Run(TrialPrograms.Get("oom_recovery"), ["400000", "200"],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = tcache });
        var result = run.Result;
        Assert.True(result.ExitCode == 0 && result.StdoutText.Contains("malloc(200 MiB) succeeded", StringComparison.Ordinal),
            $"the large request after the frees failed\n{result.Describe()}");
        Assert.DoesNotContain("konfiscator:", result.Stderr, StringComparison.Ordinal);
    }
}
