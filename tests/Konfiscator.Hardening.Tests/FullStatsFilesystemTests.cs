using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>Issue 8 item 3: any user can fill /dev/shm, and a store into a page of the shared
/// segment that the full filesystem cannot back killed the program with SIGBUS (at start-up, or
/// mid-run when a new thread took a fresh page). Here the stats directory is on a tiny tmpfs of
/// its own, in a private mount namespace, filled before the program starts or while it runs; the
/// program (fullstats.c: 64 threads alive at once, then a fork) must end as it does without
/// the library.</summary>
public class FullStatsFilesystemTests
{
    [MountNamespaceFact]
    public void A_filesystem_full_before_the_start_leaves_the_program_alive()
    {
        var (result, reference) = Run(fillBeforeStart: true);
        Assert.True(result.ExitCode == 0, $"the program died under the library\n{result.Describe()}");
        Assert.Equal(reference.StdoutText, result.StdoutText);
        // Once for the process; its fork child inherits the verdict and keeps quiet.
        var lines = Preloaded.LibraryLines(result);
        Assert.True(lines.Length == 1, $"expected one konfiscator: line\n{result.Describe()}");
        Assert.Contains("no space left on device", lines[0]);
        Assert.Contains("counting privately", lines[0]);
    }

    [MountNamespaceFact]
    public void A_filesystem_that_fills_while_the_program_runs_leaves_it_alive()
    {
        var (result, reference) = Run(fillBeforeStart: false);
        Assert.True(result.ExitCode == 0, $"the program died under the library\n{result.Describe()}");
        Assert.Equal(reference.StdoutText, result.StdoutText);
        Assert.True(Preloaded.LibraryLines(result).Length <= 1, $"at most one line per process that cannot publish\n{result.Describe()}");
    }

    /// <summary>Runs fullstats in a private mount namespace whose stats directory is on a 256 KiB
    /// tmpfs, filled with a file of zeros either before the start or between its READY and GO.</summary>
    private static (ChildResult Result, ChildResult Reference) Run(bool fillBeforeStart)
    {
        string program = StatsCasePrograms.FullStats;
        using var dir = new TempDir("konfiscator-fullfs");
        string mount = dir.Subdirectory("mnt");
        string ready = dir.File("ready"), go = dir.File("go");
        string fill = "dd if=/dev/zero of=\"$MNT/fill\" bs=4096 2>/dev/null; test \"$(df -k --output=avail \"$MNT\" | tail -1 | tr -d ' ')\" = 0 || { echo 'not full' >&2; exit 90; }";
        string script = fillBeforeStart
            ? $"set -u; mount -t tmpfs -o size=256k,mode=0700 konfiscator-test \"$MNT\" || exit 91; {fill}; touch \"$GO\"; " +
              "LD_PRELOAD=\"$LIB\" KONFISCATOR_STATS_DIR=\"$MNT/stats\" \"$PROG\" \"$READY\" \"$GO\""
            : $"set -u; mount -t tmpfs -o size=256k,mode=0700 konfiscator-test \"$MNT\" || exit 91; " +
              "LD_PRELOAD=\"$LIB\" KONFISCATOR_STATS_DIR=\"$MNT/stats\" \"$PROG\" \"$READY\" \"$GO\" & " +
              "for i in $(seq 600); do test -e \"$READY\" && break; sleep 0.1; done; " +
              $"test -e \"$READY\" || exit 92; test -n \"$(ls \"$MNT/stats\")\" || {{ echo 'no segment before the fill' >&2; exit 93; }}; {fill}; touch \"$GO\"; wait $!";
        var environment = new Dictionary<string, string?>
        {
            ["MNT"] = mount, ["READY"] = ready, ["GO"] = go, ["PROG"] = program, ["LIB"] = RepoPaths.RequireLibrary(),
        };
        var result = ChildProcess.Run(Tools.Require("unshare"), ["-m", "--", "bash", "-c", script], environment: environment,
            timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode is < 90 or > 93, $"the test's setup failed\n{result.Describe()}");

        File.WriteAllText(go, "");
        var reference = ChildProcess.Run(program, [ready, go]);
        reference.AssertSucceeded();
        return (result, reference);
    }
}
