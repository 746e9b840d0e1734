using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>`konfiscator clean` (issue 8 item 11): process starts no longer tidy the stats
/// directory, so this verb (and the exporter) do. It removes segments of processes that are over
/// and files that are not segments, keeps live segments, subdirectories and a live exporter's
/// claim, leaves ended segments to a live exporter, and refuses an untrusted directory.</summary>
public class CleanCommandTests
{
    /// <summary>A directory with one of everything; returns the names that clean must remove.</summary>
    private static string[] Populate(TempDir dir, Sleeper live, Sleeper ended)
    {
        // The live process exec'd once: its first image is final, its second (generation 1) runs.
        // The first image's file stays while the process runs (its name must stay taken).
        var running = SegmentBuilder.For(live, "alive").Requests(0, StatsLayout.MallocCalls, 24, 1);
        running.Generation = 1;
        running.WriteTo(dir.Path);
        var over = SegmentBuilder.For(ended, "gone").Requests(0, StatsLayout.MallocCalls, 24, 1);
        over.WriteTo(dir.Path);
        var replaced = SegmentBuilder.For(live, "before-exec");
        replaced.Generation = 0;
        replaced.Flags = StatsLayout.FlagFinal;
        replaced.WriteTo(dir.Path);
        File.WriteAllText(dir.File("junk.txt"), "junk");
        File.WriteAllBytes(dir.File("999999.kstats"), new byte[512].Select((_, i) => (byte)(i + 1)).ToArray()); // bad magic
        File.CreateSymbolicLink(dir.File("777777.kstats"), "/etc/passwd");
        File.WriteAllText(dir.File(SegmentFileName.ExporterPidFile), $"{ended.Pid} {ended.StartTime}\n"); // stale claim
        Directory.CreateDirectory(dir.File("a-subdirectory"));
        return [over.FileName, "junk.txt", "999999.kstats", "777777.kstats", SegmentFileName.ExporterPidFile];
    }

    [Fact]
    public async Task Dry_run_lists_what_would_go_and_removes_nothing()
    {
        using var dir = new TempDir();
        using var live = new Sleeper();
        using var ended = new Sleeper();
        string[] doomed = Populate(dir, live, ended);
        ended.End();
        var before = Directory.EnumerateFileSystemEntries(dir.Path).Order().ToList();

        var (code, stdout, stderr) = await ToolProcess.RunAsync(["clean", "--dry-run", "--stats-dir", dir.Path]);
        Assert.True(code == 0, stderr);
        foreach (string name in doomed)
            Assert.Contains($"would remove {name}: ", stdout);
        Assert.True(stdout.Contains("would remove 5 files (1 of ended processes, 4 other)", StringComparison.Ordinal), stdout);
        Assert.Equal(before, Directory.EnumerateFileSystemEntries(dir.Path).Order().ToList());
    }

    [Fact]
    public async Task Clean_removes_ended_segments_and_junk_and_keeps_live_ones()
    {
        using var dir = new TempDir();
        using var live = new Sleeper();
        using var ended = new Sleeper();
        string[] doomed = Populate(dir, live, ended);
        ended.End();

        var (code, stdout, stderr) = await ToolProcess.RunAsync(["clean", "--stats-dir", dir.Path]);
        Assert.True(code == 0, stderr);
        Assert.True(stdout.Contains("removed 5 files (1 of ended processes, 4 other)", StringComparison.Ordinal), stdout);
        foreach (string name in doomed)
            Assert.False(File.Exists(dir.File(name)) || new FileInfo(dir.File(name)).LinkTarget is not null, $"{name} is still there");
        Assert.True(File.Exists(dir.File(SegmentFileName.Format(live.Pid, 1))), "the live segment was removed");
        Assert.True(File.Exists(dir.File(SegmentFileName.Format(live.Pid, 0))), "the image the live process exec'd from was removed while the process runs");
        Assert.True(Directory.Exists(dir.File("a-subdirectory")));
        Assert.True(File.Exists("/etc/passwd"));
        // What is left still reads: the live image, and the one it replaced (over).
        var left = DirectoryScan.Run(dir.Path).Segments;
        Assert.Equal(2, left.Count);
        Assert.Single(left, s => s.Live);
    }

    [Fact]
    public async Task Clean_removes_20000_junk_files()
    {
        using var dir = new TempDir(inMemory: true);
        for (int i = 0; i < 20_000; i++) File.WriteAllBytes(dir.File($"junk-{i}"), []);
        var (code, stdout, stderr) = await ToolProcess.RunAsync(["clean", "--stats-dir", dir.Path], timeout: TimeSpan.FromSeconds(120));
        Assert.True(code == 0, stderr);
        Assert.True(stdout.Contains("removed 20000 files (0 of ended processes, 20000 other)", StringComparison.Ordinal), stdout);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task Clean_leaves_ended_segments_to_a_live_exporter()
    {
        using var dir = new TempDir();
        using var exporter = new Sleeper(); // stands for the exporter: a live process named in the claim
        using var ended = new Sleeper();
        var over = SegmentBuilder.For(ended, "gone");
        over.WriteTo(dir.Path);
        ended.End();
        File.WriteAllText(dir.File(SegmentFileName.ExporterPidFile), $"{exporter.Pid} {exporter.StartTime}\n");
        File.WriteAllText(dir.File("junk.txt"), "junk");

        var (code, stdout, stderr) = await ToolProcess.RunAsync(["clean", "--stats-dir", dir.Path]);
        Assert.True(code == 0, stderr);
        Assert.True(stdout.Contains($"left 1 file of ended processes to the exporter (pid {exporter.Pid})", StringComparison.Ordinal), stdout);
        Assert.True(File.Exists(dir.File(over.FileName)));
        Assert.True(File.Exists(dir.File(SegmentFileName.ExporterPidFile)), "the live exporter's claim was removed");
        Assert.False(File.Exists(dir.File("junk.txt")));
    }

    [Fact]
    public async Task Clean_refuses_a_directory_open_to_everyone()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("junk.txt"), "junk");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        var (code, _, stderr) = await ToolProcess.RunAsync(["clean", "--stats-dir", dir.Path]);
        Assert.Equal(1, code);
        Assert.Contains("open to other users (mode 0777); it must be 0700; not cleaning it", stderr);
        Assert.True(File.Exists(dir.File("junk.txt")));
    }

    [Fact]
    public async Task Clean_of_a_missing_directory_has_nothing_to_do()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = await ToolProcess.RunAsync(["clean", "--stats-dir", dir.File("none")]);
        Assert.True(code == 0, stderr);
        Assert.Contains("nothing to clean", stdout);
        Assert.False(Directory.Exists(dir.File("none")));
    }
}
