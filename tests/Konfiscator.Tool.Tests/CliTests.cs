using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The konfiscator command as users run it: a child process, its exit status and output.</summary>
public class CliTests
{
    [Theory]
    [InlineData("exporter", "--bogus")]
    [InlineData("exporter", "--listen")]
    [InlineData("exporter", "--listen", "nonsense")]
    [InlineData("run", "--listen", "1.2.3.4.5:80", "--", "true")]
    [InlineData("stats", "notapid")]
    [InlineData("stats", "1", "2")]
    [InlineData("frobnicate")]
    public async Task Bad_usage_exits_2_with_a_usage_message(params string[] args)
    {
        var (code, stdout, stderr) = await ToolProcess.RunAsync(args);
        Assert.Equal(2, code);
        Assert.Contains("Usage: konfiscator", stderr);
        Assert.StartsWith("konfiscator: ", stderr);
        Assert.Equal("", stdout);
    }

    [Theory]
    [InlineData("--frob", "run", "--frob", "--", "true")]
    [InlineData("--jsn", "stats", "--jsn")]
    [InlineData("-x", "stats", "-x", "12")]
    public async Task An_unknown_option_is_a_usage_error_never_an_argument(string option, params string[] args)
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = await ToolProcess.RunAsync(args, HarmlessRun(dir.Path));
        Assert.Equal(2, code);
        Assert.StartsWith($"konfiscator: unknown option '{option}'\n", stderr);
        Assert.Contains($"Usage: konfiscator {args[0]} ", stderr);
        Assert.DoesNotContain("serving", stderr);
        Assert.Equal("", stdout);
    }

    [Fact]
    public async Task Bench_names_the_workloads_when_given_an_unknown_one()
    {
        var (code, _, stderr) = await ToolProcess.RunAsync(["bench", "--workloads", "fifo,nope"]);
        Assert.Equal(2, code);
        Assert.Contains("no workload 'nope'; the workloads are fifo, lifo", stderr);
        Assert.DoesNotContain("Parameter", stderr);
    }

    [Fact]
    public async Task Help_is_generated_for_every_command_with_examples_and_plain_words()
    {
        var (code, top, _) = await ToolProcess.RunAsync(["--help"]);
        Assert.Equal(0, code);
        Assert.Contains("stats [PID]", top); // optional, so in brackets
        Assert.DoesNotContain("stats <PID>", top);
        foreach (string verb in new[] { "run", "exporter", "stats", "ps", "top", "heap", "clean", "bench" })
        {
            Assert.Contains($"  {verb} ", top);
            var (verbCode, help, _) = await ToolProcess.RunAsync([verb, "--help"]);
            Assert.Equal(0, verbCode);
            Assert.Contains($"Usage:\n  konfiscator {verb}", help);
            Assert.Contains("Examples:\n  konfiscator " + verb, help);
            foreach (string word in new[] { "the seed", "seed's", "figures", "image" })
                Assert.DoesNotContain(word, help + top, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task No_command_is_a_usage_error_and_help_works()
    {
        var (code, _, stderr) = await ToolProcess.RunAsync([]);
        Assert.Equal(2, code);
        Assert.Contains("Usage: konfiscator", stderr);

        var (helpCode, help, _) = await ToolProcess.RunAsync(["run", "--help"]);
        Assert.Equal(0, helpCode);
        Assert.Contains("--listen", help);
        Assert.Contains("--hold", help);
    }

    [Fact]
    public async Task Exporter_on_a_port_in_use_fails_clearly()
    {
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            using var dir = new TempDir();
            var (code, _, stderr) = await ToolProcess.RunAsync(["exporter", "--listen", $"127.0.0.1:{port}", "--stats-dir", dir.Path]);
            Assert.Equal(1, code);
            Assert.Contains($"cannot listen on 127.0.0.1:{port}: address already in use", stderr);
            Assert.DoesNotContain("   at ", stderr); // no stack trace
            Assert.Empty(dir.Names()); // the claim was given back
        }
        finally
        {
            taken.Stop();
        }
    }

    [Fact]
    public async Task Exporter_serves_the_directory_folds_ended_processes_and_releases_its_claim()
    {
        using var dir = new TempDir();
        using var live = new Sleeper();
        SegmentBuilder.For(live, "svc").Requests(0, StatsLayout.MallocCalls, 32, 40).WriteTo(dir.Path);
        File.WriteAllBytes(dir.File("999999.kstats"), new byte[77]); // truncated header

        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        var url = await exporter.WaitForMetricsUrlAsync();
        Assert.Equal(IPAddress.Loopback.ToString(), url.Host);

        var claim = ExporterClaim.ReadClaim(dir.File(SegmentFileName.ExporterPidFile));
        Assert.Equal(exporter.Pid, claim?.Pid);

        var e = await Net.ScrapeUntilAsync(url, x => x.Value("konfiscator_malloc_total", ("command", "svc")) == 40);
        Assert.Equal(1, e.Value("konfiscator_processes", ("command", "svc")));
        Assert.Equal(1, e.Value("konfiscator_exporter_read_errors_total", ("reason", "truncated")));

        // A process that comes and goes while nobody scrapes: the background collection folds it
        // in and removes its file.
        using (var brief = new Sleeper())
        {
            SegmentBuilder.For(brief, "svc").Requests(0, StatsLayout.MallocCalls, 32, 2).WriteTo(dir.Path);
            brief.End();
            string name = SegmentFileName.Format(brief.Pid, 0);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (File.Exists(dir.File(name)) && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.False(File.Exists(dir.File(name)), "the exporter did not collect the ended process's file");
        }
        e = Exposition.Parse((await Net.ScrapeAsync(url)).Body);
        Assert.Equal(42, e.Value("konfiscator_malloc_total", ("command", "svc")));
        Assert.Equal(1, e.Value("konfiscator_processes", ("command", "svc")));
        Assert.Equal(1, e.Value("konfiscator_exited_processes_total", ("command", "svc")));

        // A second exporter on the same directory is refused.
        var (code, _, stderr) = await ToolProcess.RunAsync(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        Assert.Equal(1, code);
        Assert.Contains($"already collected by process {exporter.Pid}", stderr);

        exporter.Signal(15);
        Assert.Equal(0, await exporter.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(File.Exists(dir.File(SegmentFileName.ExporterPidFile)));
        Assert.Contains("skipping", exporter.Stderr); // the bad file was reported once
    }

    [Fact]
    public async Task Exporter_refuses_an_untrustworthy_directory()
    {
        using var dir = new TempDir();
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1FF); // 0777
        var (code, _, stderr) = await ToolProcess.RunAsync(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        Assert.Equal(1, code);
        Assert.Contains("open to other users (mode 0777); it must be 0700", stderr);
    }

    [Fact]
    public async Task Stats_prints_one_process_as_a_table_or_json()
    {
        using var dir = new TempDir();
        using var older = new Sleeper();
        await Task.Delay(20); // a later start time (clock ticks are 10 ms)
        using var newer = new Sleeper();
        SegmentBuilder.For(older, "old").Requests(0, StatsLayout.MallocCalls, 100, 3).WriteTo(dir.Path);
        SegmentBuilder.For(newer, "new").Requests(0, StatsLayout.MallocCalls, 100, 5).Thread(0, StatsLayout.BytesInUse, 1 << 20).WriteTo(dir.Path);
        Assert.True(newer.StartTime > older.StartTime, "the two sleepers started in the same clock tick");

        var (code, stdout, stderr) = await ToolProcess.RunAsync(["stats", "--json", "--stats-dir", dir.Path]);
        Assert.True(code == 0, stderr);
        using (var json = JsonDocument.Parse(stdout))
        {
            var root = json.RootElement;
            Assert.Equal(newer.Pid, root.GetProperty("pid").GetInt32());
            Assert.Equal("new", root.GetProperty("command").GetString());
            Assert.True(root.GetProperty("live").GetBoolean());
            Assert.Equal(5UL, root.GetProperty("figures").GetProperty("malloc_total").GetUInt64());
            Assert.Equal(1UL << 20, root.GetProperty("figures").GetProperty("in_use_bytes").GetUInt64());
            var histogram = root.GetProperty("request_size_bytes");
            Assert.Equal(5UL, histogram.GetProperty("count").GetUInt64());
            Assert.Equal(500UL, histogram.GetProperty("sum").GetUInt64());
            Assert.Equal(StatsLayout.HistogramBuckets, histogram.GetProperty("buckets").GetArrayLength());
        }

        (code, stdout, stderr) = await ToolProcess.RunAsync(["stats", older.Pid.ToString(CultureInfo.InvariantCulture), "--stats-dir", dir.Path]);
        Assert.True(code == 0, stderr);
        Assert.Contains($"pid {older.Pid} (old), running", stdout);
        Assert.Contains("malloc", stdout);
        Assert.DoesNotContain("\u001b", stdout, StringComparison.Ordinal); // no colour codes when redirected

        // Reading never removes anything, even the file of a process that ended.
        older.End();
        (code, stdout, _) = await ToolProcess.RunAsync(["stats", older.Pid.ToString(CultureInfo.InvariantCulture), "--stats-dir", dir.Path]);
        Assert.Equal(0, code);
        Assert.Contains("ended", stdout);
        Assert.Equal(2, dir.Names().Length);
    }

    [Fact]
    public async Task Stats_on_a_pipe_never_wraps_hides_zero_rows_unless_all_and_honours_columns()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "wide").Requests(0, StatsLayout.MallocCalls, 100, 5).Thread(0, StatsLayout.BytesInUse, 500)
            .Arena(0, StatsLayout.FreeBytes, 1000).Arena(0, StatsLayout.LargestFreeBlock, 250).WriteTo(dir.Path);
        var noColumns = new Dictionary<string, string?> { ["COLUMNS"] = null };

        var (code, stdout, stderr) = await ToolProcess.RunAsync(["stats", "--stats-dir", dir.Path], noColumns);
        Assert.True(code == 0, stderr);
        Assert.Contains("running for ", stdout);
        Assert.DoesNotContain("clock ticks", stdout);
        Assert.Contains("│ fragmentation (1 - largest free / free) │", stdout);
        Assert.Contains(SummaryTableDefragNote, stdout);
        Assert.DoesNotContain("│ calloc ", stdout); // zero
        Assert.Matches(@"\d+ rows that are zero are not shown", stdout);
        Assert.DoesNotContain("\u001b", stdout, StringComparison.Ordinal);

        (code, stdout, _) = await ToolProcess.RunAsync(["stats", "--all", "--stats-dir", dir.Path], noColumns);
        Assert.Equal(0, code);
        Assert.Contains("│ calloc ", stdout);

        // COLUMNS is honoured: a narrow table, still without escape codes.
        (code, stdout, _) = await ToolProcess.RunAsync(["stats", "--stats-dir", dir.Path], new Dictionary<string, string?> { ["COLUMNS"] = "50" });
        Assert.Equal(0, code);
        Assert.All(stdout.Split('\n'), line => Assert.True(line.Length <= 50, line));
    }

    private const string SummaryTableDefragNote = "defrag = coalesces: a freed block merged with a free neighbour (nothing is moved)";

    [Fact]
    public async Task Stats_json_writes_the_last_bucket_as_plus_inf()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "j").Requests(0, StatsLayout.MallocCalls, 1UL << 40, 1).WriteTo(dir.Path);
        var (code, stdout, stderr) = await ToolProcess.RunAsync(["stats", "--json", "--stats-dir", dir.Path]);
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var buckets = json.RootElement.GetProperty("request_size_bytes").GetProperty("buckets");
        Assert.Equal("+Inf", buckets[buckets.GetArrayLength() - 1].GetProperty("le").GetString());
        Assert.Equal(1UL, buckets[buckets.GetArrayLength() - 1].GetProperty("count").GetUInt64());
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("figures").GetProperty("mapped_to_in_use_ratio").ValueKind);
        Assert.True(json.RootElement.GetProperty("age_seconds").GetDouble() >= 0);
    }

    [Fact]
    public async Task Stats_without_a_live_process_or_directory_is_an_error()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = await ToolProcess.RunAsync(["stats", "--stats-dir", dir.Path]);
        Assert.Equal(1, code);
        Assert.Contains("no live process", stderr);

        // A pid above the kernel's largest possible pid (2^22) cannot exist.
        (code, _, stderr) = await ToolProcess.RunAsync(["stats", "4194305", "--stats-dir", dir.Path]);
        Assert.Equal(1, code);
        Assert.Contains("no process 4194305 is running", stderr);

        // A process that runs without the library: a different message, with what to check.
        using (var plain = new Sleeper())
        {
            string pid = plain.Pid.ToString(CultureInfo.InvariantCulture);
            (code, _, stderr) = await ToolProcess.RunAsync(["stats", pid, "--stats-dir", dir.Path]);
            Assert.Equal(1, code);
            Assert.Contains($"process {pid} (sleep) is running but publishes no statistics", stderr);
            Assert.Contains("libkonfiscator.so preloaded", stderr);
        }

        (code, _, stderr) = await ToolProcess.RunAsync(["stats", "--stats-dir", dir.File("missing")]);
        Assert.Equal(1, code);
        Assert.Contains("no stats directory", stderr);
    }

    // ---- run, with a harmless library in place of the allocator ----

    private static Dictionary<string, string?> HarmlessRun(string? statsDir = null) => new()
    {
        ["KONFISCATOR_LIB"] = Artifacts.HarmlessLibrary(),
        ["KONFISCATOR_STATS_DIR"] = statsDir,
    };

    [Fact]
    public async Task Run_passes_the_exit_status_through_and_prints_a_summary()
    {
        var (code, stdout, stderr) = await ToolProcess.RunAsync(
            ["run", "--listen", "127.0.0.1:0", "--", "sh", "-c", "echo hello; exit 3"], HarmlessRun());
        Assert.Equal(3, code);
        Assert.Equal("hello\n", stdout);
        Assert.Contains("exited with status 3", stderr);
    }

    [Fact]
    public async Task Run_reports_a_killed_command_as_128_plus_the_signal()
    {
        var (code, _, stderr) = await ToolProcess.RunAsync(
            ["run", "--listen", "127.0.0.1:0", "--", "sh", "-c", "kill -KILL $$"], HarmlessRun());
        Assert.Equal(137, code);
        Assert.Contains("killed by signal 9", stderr);
    }

    [Theory]
    [InlineData("no-such-cmd-k10", 127, "konfiscator: no-such-cmd-k10: command not found\n")]
    [InlineData("/nonexistent/program", 127, "konfiscator: /nonexistent/program: No such file or directory\n")]
    [InlineData("/", 126, "konfiscator: /: Is a directory\n")]
    public async Task Run_fails_to_start_a_command_in_a_shell_s_words(string command, int status, string message)
    {
        var (code, _, stderr) = await ToolProcess.RunAsync(["run", "--listen", "127.0.0.1:0", "--", command], HarmlessRun());
        Assert.Equal(status, code);
        Assert.Equal(message, stderr);
    }

    [Fact]
    public async Task Run_of_a_file_that_is_not_executable_exits_126()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("script"), "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(dir.File("script"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var (code, _, stderr) = await ToolProcess.RunAsync(["run", "--listen", "127.0.0.1:0", "--", dir.File("script")], HarmlessRun());
        Assert.Equal(126, code);
        Assert.Equal($"konfiscator: {dir.File("script")}: Permission denied\n", stderr);
    }

    [Fact]
    public async Task Run_warns_that_a_set_user_id_program_keeps_glibc_s_malloc()
    {
        // A set-user-ID copy of `true` owned by another user than us: the loader would run it in
        // secure mode, ignoring LD_PRELOAD. Making one needs the right to chown (root); as another
        // user the check is the reverse: a program set-user-ID to root.
        using var dir = new TempDir();
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ED); // 0755, so that the owner can be anyone
        string program = dir.File("setuid-true");
        File.Copy("/bin/true", program);
        uint me = Konfiscator.Reader.StatsDirectory.EffectiveUid;
        int owner = me == 0 ? 65534 : 0;
        if (me == 0) Assert.Equal(0, Chown(program, owner, -1));
        else if (!File.Exists("/usr/bin/passwd")) throw new Xunit.Sdk.XunitException("needs root, or /usr/bin/passwd (set-user-ID root)");
        else program = "/usr/bin/passwd";
        if (me == 0) File.SetUnixFileMode(program, (UnixFileMode)0x9ED); // 04755
        var (_, _, stderr) = await ToolProcess.RunAsync(["run", "--listen", "127.0.0.1:0", "--", program, "--help"], HarmlessRun());
        Assert.Contains("set-user-ID program: the loader ignores LD_PRELOAD", stderr);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown(string path, int owner, int group);

    [Fact]
    public async Task Run_without_the_library_fails_before_starting_anything()
    {
        var (code, _, stderr) = await ToolProcess.RunAsync(
            ["run", "--listen", "127.0.0.1:0", "--", "true"], new Dictionary<string, string?> { ["KONFISCATOR_LIB"] = "/nonexistent/libkonfiscator.so" });
        Assert.Equal(125, code);
        Assert.Contains("build it with ./build.sh", stderr);
    }

    [Fact]
    public async Task Run_on_a_port_in_use_fails_before_starting_the_command()
    {
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            using var marker = new TempDir();
            var (code, _, stderr) = await ToolProcess.RunAsync(
                ["run", "--listen", $"127.0.0.1:{port}", "--", "touch", marker.File("ran")], HarmlessRun());
            Assert.Equal(125, code);
            Assert.Contains("address already in use", stderr);
            Assert.Empty(marker.Names());
        }
        finally
        {
            taken.Stop();
        }
    }

    [Theory]
    [InlineData(15, 143)]
    [InlineData(2, 130)]
    public async Task Run_forwards_signals_to_the_command(int signal, int expected)
    {
        var (tool, _) = await RunHarness.StartAsync(["sleep", "30"], environment: HarmlessRun());
        using (tool)
        {
            await Task.Delay(200); // let the child start
            tool.Signal(signal);
            Assert.Equal(expected, await tool.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    [Fact]
    public async Task Run_serves_the_command_while_it_runs_and_summarizes_it()
    {
        // The command publishes through a synthetic segment (the allocator is not preloaded here):
        // it writes its pid, the test writes a segment for it into the run's directory.
        using var dir = new TempDir();
        var (tool, url) = await RunHarness.StartAsync(
            ["sh", "-c", $"echo $$ > {dir.File("child.pid")}; exec sleep 30"], perPid: true, environment: HarmlessRun(dir.Path));
        using (tool)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!File.Exists(dir.File("child.pid")) && DateTime.UtcNow < deadline) await Task.Delay(20);
            int pid = int.Parse(File.ReadAllText(dir.File("child.pid")).Trim(), CultureInfo.InvariantCulture);
            ulong start = ProcFs.Instance.ReadStat(pid)!.Value.StartTime;
            new SegmentBuilder { Pid = pid, StartTime = start, Command = "sleep" }
                .Requests(0, StatsLayout.MallocCalls, 50, 21).Thread(0, StatsLayout.BytesInUse, 1000).WriteTo(dir.Path);

            string p = pid.ToString(CultureInfo.InvariantCulture);
            var e = await Net.ScrapeUntilAsync(url, x => x.Value("konfiscator_malloc_total", ("command", "sleep"), ("pid", p)) == 21);
            Assert.Equal(1000, e.Value("konfiscator_in_use_bytes", ("pid", p)));
            Assert.Equal(1, e.Value("konfiscator_processes", ("command", "sleep")));

            tool.Signal(15);
            Assert.Equal(143, await tool.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            string summary = tool.Stderr;
            Assert.True(summary.Contains("killed by signal 15") && summary.Contains("malloc") && summary.Contains("21"), summary);
            // The shared directory stays (it is the caller's), the ended process's file is collected.
            Assert.True(Directory.Exists(dir.Path));
            Assert.DoesNotContain(SegmentFileName.Format(pid, 0), dir.Names());
            Assert.DoesNotContain(SegmentFileName.ExporterPidFile, dir.Names());
        }
    }

    [Fact]
    public async Task Run_hold_keeps_serving_after_the_command_exits_until_sigint()
    {
        var (tool, url) = await RunHarness.StartAsync(["true"], hold: true, environment: HarmlessRun());
        using (tool)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!tool.Stderr.Contains("still serving") && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.True(tool.Stderr.Contains("still serving"), tool.Stderr);
            var (_, body) = await Net.ScrapeAsync(url);
            Assert.Contains("konfiscator_exporter_read_errors_total", body);
            tool.Signal(2);
            Assert.Equal(0, await tool.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        }
    }
}
