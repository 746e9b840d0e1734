using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>Issue 8 item 11: with no exporter running, every start used to look at every file in
/// the stats directory (0.5 s per start with 100 000 junk files). A start now looks at a bounded
/// number of entries whatever the directory holds; cleaning is the exporter's and
/// `konfiscator clean`'s. Asserted on the work (entries looked at, files removed), not on time.</summary>
public class JunkSegmentFilesTests
{
    private const int Junk = 20_000;
    /// <summary>What "a few" may mean: far below the junk, and no more than one short read of the directory.</summary>
    private const int FewEntries = 64;

    [Fact]
    public void A_start_looks_at_a_few_entries_of_a_directory_of_20000_junk_files()
    {
        using var dir = new MemoryDir();
        string stats = dir.Path;
        for (int i = 0; i < Junk; i++)
            File.WriteAllBytes(Path.Combine(stats, $"junk-{i}"), []);

        var result = Preloaded.Run(StatsCasePrograms.StartWork, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        int entries = int.Parse(result.StdoutText.Trim().Split('=')[1]);
        Assert.InRange(entries, 1, FewEntries);
        Assert.Equal(Junk + 1, Directory.GetFiles(stats).Length); // the junk, and this process's segment
    }

    [Fact]
    public void A_start_removes_a_few_segments_of_ended_processes_not_20000()
    {
        using var dir = new MemoryDir();
        string stats = dir.Path;
        // A real segment of a process that has ended, copied under 20 000 segment names.
        var driver = Preloaded.Run(NativePrograms.Instance.Driver, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        driver.AssertSucceeded();
        string ended = Assert.Single(Directory.GetFiles(stats));
        byte[] header = File.ReadAllBytes(ended)[..256];
        File.Delete(ended);
        for (int i = 0; i < Junk; i++)
            File.WriteAllBytes(Path.Combine(stats, $"{4_000_000 + i}.kstats"), header);

        var result = Preloaded.Run(StatsCasePrograms.StartWork, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        int left = Directory.GetFiles(stats, "4*.kstats").Length;
        Assert.True(left >= Junk - FewEntries, $"a start removed {Junk - left} files of ended processes; it may tidy a few, not all");
        Assert.True(left < Junk, "a start with no exporter running should still tidy the first few ended segments it sees");
    }

    /// <summary>A start opens no file named for a process that is alive (one kill(pid, 0) says so):
    /// such a file is that process's, and reading every live process's header cost each start
    /// about 25 µs a file (docs/performance/processes.md). Files of an ended process under a live
    /// process's pid (a reused pid) are left for the exporter and `konfiscator clean`; a file
    /// named for a pid that is gone is still read and removed.</summary>
    [Fact]
    public void A_start_leaves_the_files_named_for_a_live_process_alone()
    {
        using var dir = new MemoryDir();
        string stats = dir.Path;
        var env = new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats };
        var driver = Preloaded.Run(NativePrograms.Instance.Driver, [], env);
        driver.AssertSucceeded();
        string ended = Assert.Single(Directory.GetFiles(stats));
        byte[] header = File.ReadAllBytes(ended)[..256];
        // The driver has ended: its own file (rewritten below) is over. This test's process is
        // alive throughout: files under its pid, with the ended driver's header, are not opened.
        int live = Environment.ProcessId;
        for (int i = 1; i <= 5; i++)
            File.WriteAllBytes(Path.Combine(stats, $"{live}.{i}.kstats"), header);
        File.WriteAllBytes(ended, header);

        var result = Preloaded.Run(StatsCasePrograms.StartWork, [], env);
        result.AssertSucceeded();
        Assert.Equal(5, Directory.GetFiles(stats, $"{live}.*.kstats").Length);
        Assert.False(File.Exists(ended), "the file of the ended driver should have been removed by the start");
    }
}

/// <summary>A private (0700) directory on /dev/shm, where the default stats directory lives (tmpfs:
/// 20 000 files are made and removed in memory, not on a shared disk); under the temporary
/// directory when there is no /dev/shm. Removed on dispose.</summary>
internal sealed class MemoryDir : IDisposable
{
    public MemoryDir()
    {
        string parent = Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(parent, $"konfiscator-junk-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
