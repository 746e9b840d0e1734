using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>Issue 10, settings silently ignored: KONFISCATOR_TCACHE and KONFISCATOR_STATS accept
/// 0/1, off/on, false/true, no/yes in any case; anything else keeps the default and says so in one
/// line; an unusable KONFISCATOR_STATS_DIR means one line and private counting, never a dead
/// program. The effect is read back from the program: whether a freed block went to the thread
/// cache (switches.c asks the heap's free index), whether a segment file appeared.</summary>
public class SettingsSpellingTests
{
    [Theory]
    [InlineData("0", "off"), InlineData("off", "off"), InlineData("OFF", "off"), InlineData("false", "off"),
     InlineData("False", "off"), InlineData("no", "off"), InlineData("NO", "off")]
    [InlineData("1", "on"), InlineData("on", "on"), InlineData("On", "on"), InlineData("true", "on"),
     InlineData("TRUE", "on"), InlineData("yes", "on"), InlineData("Yes", "on"), InlineData("", "on")]
    public void Tcache_spellings_switch_the_thread_cache(string value, string expected)
    {
        var result = Preloaded.Run(StatsCasePrograms.Switches, [],
            new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = value, ["KONFISCATOR_STATS"] = "0" });
        result.AssertSucceeded();
        Assert.True($"tcache={expected}\n" == result.StdoutText, result.Describe());
        Assert.True(Preloaded.LibraryLines(result).Length == 0, $"a valid spelling must not be reported\n{result.Describe()}");
    }

    [Theory]
    [InlineData("banana"), InlineData("2"), InlineData("enable"), InlineData(" 1")]
    public void An_unknown_tcache_value_keeps_the_cache_and_says_so_once(string value)
    {
        var result = Preloaded.Run(StatsCasePrograms.Switches, [],
            new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = value, ["KONFISCATOR_STATS"] = "0" });
        result.AssertSucceeded();
        Assert.True("tcache=on\n" == result.StdoutText, result.Describe());
        var lines = Preloaded.LibraryLines(result);
        Assert.True(lines.Length == 1, $"expected one konfiscator: line\n{result.Describe()}");
        Assert.Contains($"KONFISCATOR_TCACHE={value} not understood", lines[0]);
        Assert.Contains("using the default, on", lines[0]);
    }

    [Fact]
    public void A_value_with_a_newline_is_still_reported_on_one_line()
    {
        var result = Preloaded.Run(StatsCasePrograms.Switches, [],
            new Dictionary<string, string?> { ["KONFISCATOR_TCACHE"] = "ba\nnana", ["KONFISCATOR_STATS"] = "0" });
        result.AssertSucceeded();
        Assert.True(result.Stderr.Count(c => c == '\n') == 1, result.Describe());
        Assert.StartsWith("konfiscator: KONFISCATOR_TCACHE=ba?nana not understood", result.Stderr);
    }

    [Theory]
    [InlineData("0", false), InlineData("off", false), InlineData("Off", false), InlineData("false", false),
     InlineData("FALSE", false), InlineData("no", false), InlineData("No", false)]
    [InlineData("1", true), InlineData("on", true), InlineData("ON", true), InlineData("true", true),
     InlineData("True", true), InlineData("yes", true), InlineData("YES", true), InlineData("", true)]
    public void Stats_spellings_switch_publishing(string value, bool publishes)
    {
        using var dir = new TempDir("konfiscator-settings");
        string stats = dir.Subdirectory("stats");
        var result = Preloaded.Run(StatsCasePrograms.Switches, [],
            new Dictionary<string, string?> { ["KONFISCATOR_STATS"] = value, ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        Assert.True(Preloaded.LibraryLines(result).Length == 0, $"a valid spelling must not be reported\n{result.Describe()}");
        var files = Preloaded.Segments(stats);
        Assert.True(publishes == (files.Length == 1),
            $"KONFISCATOR_STATS={value}: expected {(publishes ? "one segment file" : "none")}, found [{string.Join(", ", files)}]\n{result.Describe()}");
    }

    [Fact]
    public void An_unknown_stats_value_keeps_publishing_and_says_so_once()
    {
        using var dir = new TempDir("konfiscator-settings");
        string stats = dir.Subdirectory("stats");
        var result = Preloaded.Run(StatsCasePrograms.Switches, [],
            new Dictionary<string, string?> { ["KONFISCATOR_STATS"] = "banana", ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        Assert.Single(Preloaded.Segments(stats));
        var lines = Preloaded.LibraryLines(result);
        Assert.True(lines.Length == 1, $"expected one konfiscator: line\n{result.Describe()}");
        Assert.Contains("KONFISCATOR_STATS=banana not understood", lines[0]);
    }

    public static TheoryData<string> UnusableDirectories => ["missing parent", "a regular file", "a path too long"];

    [Theory]
    [MemberData(nameof(UnusableDirectories))]
    public void An_unusable_stats_directory_means_one_line_and_private_counting(string kind)
    {
        using var dir = new TempDir("konfiscator-settings");
        string path = kind switch
        {
            "missing parent" => dir.File("no/such/dir"),
            "a regular file" => dir.File("file"),
            _ => dir.File(new string('d', 600)),
        };
        if (kind == "a regular file") File.WriteAllText(path, "not a directory\n");
        AssertRunsPrivately(path, kind == "a path too long" ? "too long" : path);
        if (kind == "a regular file") Assert.Equal("not a directory\n", File.ReadAllText(path));
        if (kind == "missing parent") Assert.False(Directory.Exists(dir.File("no")));
    }

    [Fact]
    public void A_stats_directory_this_user_cannot_write_means_one_line_and_private_counting()
    {
        using var dir = new TempDir("konfiscator-settings");
        string stats = dir.Subdirectory("readonly");
        Preloaded.SetMode(stats, "0500");
        string driver = NativePrograms.Instance.Driver;
        ChildResult result;
        if (Privileges.IsRoot)
        {
            // root writes anywhere: run the driver as nobody, in a directory nobody owns.
            Assert.True(Privileges.OtherUserUnavailable is null, $"as root this case needs to run a program as user nobody: {Privileges.OtherUserUnavailable}");
            Preloaded.SetMode(dir.Path, "0755");
            Chown(stats, 65534);
            result = RunAsNobody(dir, driver, new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        }
        else
            result = Preloaded.Run(driver, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        Assert.Equal(Preloaded.RunWithout(driver, []).StdoutText, result.StdoutText);
        var lines = Preloaded.LibraryLines(result);
        Assert.True(lines.Length == 1, $"expected one konfiscator: line\n{result.Describe()}");
        Assert.Contains($"cannot create a segment in {stats}: permission denied", lines[0]);
        Assert.Empty(Preloaded.Segments(stats));
    }

    internal static void AssertRunsPrivately(string statsDirectory, string named)
    {
        string driver = NativePrograms.Instance.Driver;
        var result = Preloaded.Run(driver, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = statsDirectory });
        result.AssertSucceeded();
        Assert.Equal(Preloaded.RunWithout(driver, []).StdoutText, result.StdoutText);
        var lines = Preloaded.LibraryLines(result);
        Assert.True(lines.Length == 1, $"expected one konfiscator: line\n{result.Describe()}");
        Assert.Contains(named, lines[0]);
        Assert.Contains("counting privately", lines[0]);
    }

    internal static void Chown(string path, int uid)
    {
        var result = ChildProcess.Run(Tools.Require("chown"), [$"{uid}", path]);
        result.AssertSucceeded();
    }

    /// <summary>Runs a copy of <paramref name="program"/> under a copy of the library as user nobody
    /// (setpriv), with <paramref name="settings"/>; setpriv itself runs without the library.</summary>
    internal static ChildResult RunAsNobody(TempDir dir, string program, IReadOnlyDictionary<string, string?> settings)
    {
        string copy = CopyForEveryone(program, dir);
        string library = CopyForEveryone(RepoPaths.RequireLibrary(), dir);
        return ChildProcess.Run(Tools.Require("setpriv"),
            ["--reuid=65534", "--regid=65534", "--clear-groups", "env", $"LD_PRELOAD={library}",
             .. settings.Select(s => $"{s.Key}={s.Value}"), copy]);
    }

    /// <summary>A copy of a program another user can run (the test's directories are 0700).</summary>
    internal static string CopyForEveryone(string program, TempDir dir)
    {
        string copy = dir.File(Path.GetFileName(program));
        File.Copy(program, copy);
        Preloaded.SetMode(copy, "0755");
        return copy;
    }
}
