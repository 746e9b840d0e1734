using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>Issue 8 item 10: loaded into every program through /etc/ld.so.preload, the library
/// let a user choose where a setuid-root program writes (KONFISCATOR_STATS_DIR=/etc/...). In a
/// secure process (AT_SECURE) every KONFISCATOR_* setting is ignored and nothing is published.
///
/// What this proves: a setuid-root copy of setuidprobe.c, run by user nobody, is a secure process
/// (it prints AT_SECURE=1); it loads the real library with dlopen and calls the library's own
/// malloc, which runs the library's whole start-up (settings, publishing decision) inside that
/// secure process. The directory named by KONFISCATOR_STATS_DIR must not appear and no setting
/// may be acted on or reported. The same binary run by root (not secure) must create the
/// directory and report the bad setting, so the test can tell the two apart. What it does not
/// prove: the /etc/ld.so.preload path itself (the test does not change the machine's loader
/// configuration); the decision is the same code either way.</summary>
public class SetuidProcessTests
{
    [SetuidFact]
    public void A_setuid_program_ignores_the_settings_and_publishes_nothing()
    {
        using var dir = new TempDir("konfiscator-setuid");
        Preloaded.SetMode(dir.Path, "0755");
        string probe = SettingsSpellingTests.CopyForEveryone(StatsCasePrograms.SetuidProbe, dir);
        string library = SettingsSpellingTests.CopyForEveryone(RepoPaths.RequireLibrary(), dir);
        Preloaded.SetMode(probe, "4755"); // setuid root (the test runs as root)
        string victim = dir.File("victim");
        var settings = new Dictionary<string, string?>
        {
            ["KONFISCATOR_STATS_DIR"] = victim,
            ["KONFISCATOR_TCACHE"] = "banana",
            ["KONFISCATOR_STATS"] = "banana",
        };

        var secure = ChildProcess.Run(Tools.Require("setpriv"), ["--reuid=65534", "--regid=65534", "--clear-groups", probe, library],
            environment: settings);
        secure.AssertSucceeded();
        Assert.True(secure.StdoutText.StartsWith("secure=1 ", StringComparison.Ordinal), $"the probe did not run as a secure process\n{secure.Describe()}");
        Assert.Contains("started", secure.StdoutText);
        Assert.False(Directory.Exists(victim), $"a setuid program created the directory KONFISCATOR_STATS_DIR named\n{secure.Describe()}");
        Assert.True(Preloaded.LibraryLines(secure).Length == 0, $"a secure process must not act on (or report) the user's settings\n{secure.Describe()}");
        string pid = secure.StdoutText.Split("pid=")[1].Split('\n')[0];
        Assert.False(File.Exists($"/dev/shm/konfiscator-0/{pid}.kstats"), "a setuid program published into root's default directory");

        // The control: run by root, the same program is not secure and follows the settings.
        var plain = ChildProcess.Run(probe, [library], environment: settings);
        plain.AssertSucceeded();
        Assert.StartsWith("secure=0 ", plain.StdoutText);
        Assert.Single(Preloaded.Segments(victim));
        Assert.Equal(2, Preloaded.LibraryLines(plain).Length);
    }
}
