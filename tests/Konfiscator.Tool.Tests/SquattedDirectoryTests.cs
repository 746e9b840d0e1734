using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>Issue 8 item 9, the reader's side: a stats directory another user could read, write or
/// replace is refused at every scan, not only when the exporter starts (a squatter who opened the
/// directory to everyone after the start could otherwise plant a forged segment for root's exporter
/// to serve). Refused means: no segment read, a clear reason, a counted scan error, no crash.</summary>
public class SquattedDirectoryTests
{
    [Fact]
    public void A_scan_of_a_directory_open_to_everyone_reads_nothing()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "sshd").Requests(0, StatsLayout.MallocCalls, 24, 7).WriteTo(dir.Path);
        File.SetUnixFileMode(dir.Path, (UnixFileMode)Convert.ToInt32("777", 8));

        var scan = DirectoryScan.Run(dir.Path);
        Assert.Empty(scan.Segments);
        Assert.True(scan.Untrusted);
        Assert.Contains("open to other users (mode 0777); it must be 0700", scan.DirectoryError);
    }

    [Fact]
    public void A_scan_through_a_symbolic_link_reads_nothing()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        string target = Path.Combine(dir.Path, "target");
        Directory.CreateDirectory(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        SegmentBuilder.For(p, "sshd").Requests(0, StatsLayout.MallocCalls, 24, 7).WriteTo(target);
        string link = Path.Combine(dir.Path, "link");
        File.CreateSymbolicLink(link, target);

        var scan = DirectoryScan.Run(link);
        Assert.Empty(scan.Segments);
        Assert.True(scan.Untrusted);
        Assert.Contains("is a symbolic link", scan.DirectoryError);
        Assert.Single(DirectoryScan.Run(target).Segments); // the control: the directory itself is fine
    }

    [Fact]
    public void A_scan_of_another_users_directory_reads_nothing()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "sshd").Requests(0, StatsLayout.MallocCalls, 24, 7).WriteTo(dir.Path);
        // As root, give the directory to nobody; as anyone else, the check meets root's /.
        string path = dir.Path;
        if (StatsDirectory.EffectiveUid == 0)
            Assert.True(Interop.Chown(path, 65534, 65534) == 0, "chown to nobody failed");
        else
            path = "/";
        var scan = DirectoryScan.Run(path);
        Assert.Empty(scan.Segments);
        Assert.True(scan.Untrusted);
        Assert.Contains($"belongs to uid {(StatsDirectory.EffectiveUid == 0 ? 65534 : 0)}", scan.DirectoryError);
    }

    [Fact]
    public async Task The_exporter_stops_reading_a_directory_opened_to_everyone_after_its_start()
    {
        using var dir = new TempDir();
        using var honest = new Sleeper();
        using var squatter = new Sleeper();
        SegmentBuilder.For(honest, "honest").Requests(0, StatsLayout.MallocCalls, 24, 3).WriteTo(dir.Path);
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        var url = await exporter.WaitForMetricsUrlAsync();
        await Net.ScrapeUntilAsync(url, e => e.Value("konfiscator_processes", ("command", "honest")) == 1);

        // Opened up, and a forged segment planted: neither may be served.
        File.SetUnixFileMode(dir.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        SegmentBuilder.For(squatter, "sshd").Requests(0, StatsLayout.MallocCalls, 24, 1000).WriteTo(dir.Path);
        var refused = await Net.ScrapeUntilAsync(url, e => e.Value("konfiscator_exporter_scan_errors_total", ("reason", "untrusted_directory")) >= 1);
        Assert.Empty(refused.Find("konfiscator_malloc_total", ("command", "sshd")));
        Assert.Empty(refused.Find("konfiscator_processes", ("command", "sshd")));
        Assert.False(exporter.HasExited, "the exporter must keep running");
        await Task.Delay(1500); // a few more scans: still one line
        Assert.Equal(1, exporter.Stderr.Split('\n').Count(l => l.Contains("open to other users (mode 0777)", StringComparison.Ordinal)));

        // Closed again (and the forged file removed by the owner): scanning resumes where it was.
        // The live process was neither taken for ended (its file removed) nor counted twice.
        File.Delete(Path.Combine(dir.Path, SegmentFileName.Format(squatter.Pid, 0)));
        File.SetUnixFileMode(dir.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        int errors = (int)refused.Value("konfiscator_exporter_scan_errors_total", ("reason", "untrusted_directory"))!;
        await Task.Delay(1500);
        var resumed = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
        Assert.Equal(1, resumed.Value("konfiscator_processes", ("command", "honest")));
        Assert.Equal(3, resumed.Value("konfiscator_malloc_total", ("command", "honest")));
        Assert.True(File.Exists(Path.Combine(dir.Path, SegmentFileName.Format(honest.Pid, 0))), "the live process's file was removed");
        Assert.True(resumed.Value("konfiscator_exporter_scan_errors_total", ("reason", "untrusted_directory")) >= errors);
    }

    [Theory]
    [InlineData("stats"), InlineData("exporter")]
    public async Task The_tool_refuses_a_directory_open_to_everyone_with_the_reason(string verb)
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "sshd").Requests(0, StatsLayout.MallocCalls, 24, 7).WriteTo(dir.Path);
        File.SetUnixFileMode(dir.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        string[] args = verb == "stats" ? ["stats", "--stats-dir", dir.Path] : ["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path];
        var (code, stdout, stderr) = await ToolProcess.RunAsync(args);
        Assert.Equal(1, code);
        Assert.Equal($"konfiscator: the stats directory {dir.Path} is open to other users (mode 0777); it must be 0700\n", stderr);
        Assert.DoesNotContain("sshd", stdout);
    }

    private static class Interop
    {
        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
        public static extern int Chown(string path, int uid, int gid);
    }
}
