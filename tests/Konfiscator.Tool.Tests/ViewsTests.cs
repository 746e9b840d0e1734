using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Konfiscator.Reader;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>ps, stats -p/-n, top, heap, run's registry and --no-serve, and the library's exit summary,
/// with the real allocator.</summary>
public class ViewsTests
{
    public ViewsTests() => ArtifactsCheck.RequireBuilt();

    private static async Task<(int Code, string Stdout, string Stderr)> ToolAsync(params string[] args)
    {
        using var tool = ToolProcess.Start(args, tool: Artifacts.Tool);
        int code = await tool.WaitForExitAsync(TimeSpan.FromSeconds(30));
        return (code, tool.Stdout, tool.Stderr);
    }

    /// <summary>A process under `konfiscator run` publishes in run's private directory; run prints it and
    /// registers it, so ps (and stats, top, heap) find the process without being told where.</summary>
    [ArtifactsFact]
    public async Task Ps_and_stats_find_a_process_under_run_through_its_registration()
    {
        using var work = new TempDir("views");
        using var run = ToolProcess.Start(["run", "--no-serve", "--", KHeap.Program, work.Path], tool: Artifacts.Tool);
        string ready = work.File("ready1");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // The program's marker and run's line about its directory (read from run's stderr as it comes).
        while ((!File.Exists(ready) || !run.Stderr.Contains("stats directory", StringComparison.Ordinal))
               && DateTime.UtcNow < deadline && !run.HasExited)
            await Task.Delay(20);
        Assert.True(File.Exists(ready), run.Stderr);
        string runDir = Assert.Single(System.Text.RegularExpressions.Regex.Matches(run.Stderr, @"stats directory (\S+)")).Groups[1].Value;
        Assert.DoesNotContain("serving", run.Stderr);
        string registration = Path.Combine(RunRegistry.RegistryDirectory, $"run.{run.Pid}.dir");
        Assert.True(File.Exists(registration), $"no {registration}");

        var (code, stdout, stderr) = await ToolAsync("ps", "--json", "--interval", "0.2");
        Assert.True(code == 0, stderr);
        using (var json = JsonDocument.Parse(stdout))
        {
            var mine = json.RootElement.EnumerateArray().Single(p => p.GetProperty("directory").GetString() == runDir);
            Assert.Equal("kheap", mine.GetProperty("command").GetString());
            Assert.True(mine.GetProperty("in_use_bytes").GetUInt64() > 10 << 20);
            Assert.True(mine.GetProperty("peak_in_use_bytes").GetUInt64() >= mine.GetProperty("in_use_bytes").GetUInt64());
            Assert.True(mine.GetProperty("calls").GetUInt64() >= 1000);
            Assert.True(mine.GetProperty("age_seconds").GetDouble() >= 0);
            int pid = mine.GetProperty("pid").GetInt32();

            (code, stdout, stderr) = await ToolAsync("ps");
            Assert.Equal(0, code);
            Assert.Contains("PID COMMAND", stdout);
            Assert.Contains(runDir, stdout);

            (code, stdout, stderr) = await ToolAsync("stats", "-p", pid.ToString(CultureInfo.InvariantCulture), "--json");
            Assert.True(code == 0, stderr);
            Assert.Equal(pid, JsonDocument.Parse(stdout).RootElement.GetProperty("pid").GetInt32());
            Assert.DoesNotContain("chose", stderr); // -p: the user chose

            (code, stdout, stderr) = await ToolAsync("stats", "-n", "kheap", "--json");
            Assert.True(code == 0, stderr);
            Assert.Contains("konfiscator: chose pid ", stderr);
            Assert.Contains("(kheap)", stderr);

            (code, _, stderr) = await ToolAsync("stats", "-n", "no-such-name");
            Assert.Equal(1, code);
            Assert.Contains("no live process named 'no-such-name'", stderr);

            // heap: one line per region, a legend, the free blocks.
            (code, stdout, stderr) = await ToolAsync("heap", "-p", pid.ToString(CultureInfo.InvariantCulture));
            Assert.True(code == 0, stderr);
            Assert.Contains($"heap of pid {pid} (kheap)", stdout);
            Assert.Contains("legend:", stdout);
            Assert.Contains("free blocks by size:", stdout);
            var regions = File.ReadAllLines(work.File("regions"));
            Assert.NotEmpty(regions);
            foreach (string line in regions)
            {
                ulong start = ulong.Parse(line.Split(' ')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture) - 48;
                Assert.Contains($"0x{start:x}", stdout);
            }
            Assert.All(stdout.Split('\n'), l => Assert.True(l.Length <= 80, $"longer than 80 columns: {l}"));

            // top --once: one frame, plain text, 80 columns.
            (code, stdout, stderr) = await ToolAsync("top", "-p", pid.ToString(CultureInfo.InvariantCulture), "--once", "--interval", "0.2");
            Assert.True(code == 0, stderr);
            Assert.Contains($"konfiscator top · pid {pid} (kheap)", stdout);
            Assert.Contains("in use", stdout);
            Assert.Contains("request sizes", stdout);
            Assert.Contains("fragmented", stdout);
            Assert.DoesNotContain("\u001b", stdout, StringComparison.Ordinal);
            Assert.All(stdout.Split('\n'), l => Assert.True(l.Length <= 80, $"longer than 80 columns: {l}"));
        }

        File.Create(work.File("go1")).Dispose();
        while (!File.Exists(work.File("ready2")) && !run.HasExited) await Task.Delay(20);
        File.Create(work.File("go2")).Dispose();
        Assert.Equal(0, await run.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("kheap exited with status 0", run.Stderr);
        Assert.Contains("malloc", run.Stderr); // the summary table
        Assert.False(File.Exists(registration), "run left its registration behind");
        Assert.False(Directory.Exists(runDir), "run left its directory behind");
    }

    [ArtifactsFact]
    public async Task Run_no_serve_refuses_listen_and_hold()
    {
        var (code, _, stderr) = await ToolAsync("run", "--no-serve", "--listen", "127.0.0.1:0", "--", "true");
        Assert.Equal(2, code);
        Assert.Contains("--no-serve", stderr);
        (code, _, stderr) = await ToolAsync("run", "--no-serve", "--hold", "--", "true");
        Assert.Equal(2, code);
        Assert.Contains("--hold", stderr);
    }

    [ArtifactsFact]
    public async Task Top_with_a_pid_that_publishes_nothing_is_a_clear_error()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = await ToolAsync("top", "-p", "4194305", "--once", "--stats-dir", dir.Path);
        Assert.Equal(1, code);
        Assert.Contains("no process 4194305 is running", stderr); // above the largest possible pid (2^22)
        (code, _, stderr) = await ToolAsync("top", "-p", "x");
        Assert.Equal(2, code);
        Assert.Contains("PID must be a positive number", stderr);
    }

    /// <summary>KONFISCATOR_SHOW_STATS=1: three lines on stderr at exit, even from a program that
    /// closes its own stderr in an exit handler (coreutils do), and nothing without it.</summary>
    [ArtifactsFact]
    public async Task Show_stats_prints_a_summary_at_exit()
    {
        string? ls = new[] { "/usr/bin/ls", "/bin/ls" }.FirstOrDefault(File.Exists);
        Assert.NotNull(ls);
        foreach (var (show, expectLines) in new[] { ("1", true), ("0", false) })
        {
            var start = new ProcessStartInfo(ls) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            start.ArgumentList.Add("-l");
            start.ArgumentList.Add("/");
            start.Environment["LD_PRELOAD"] = Artifacts.Library;
            start.Environment["KONFISCATOR_STATS"] = "0";
            start.Environment["KONFISCATOR_SHOW_STATS"] = show;
            using var p = Process.Start(start)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            string stderr = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.Equal(0, p.ExitCode);
            Assert.Contains("bin", await stdout);
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (!expectLines)
            {
                Assert.Empty(lines);
                continue;
            }
            Assert.Equal(3, lines.Length);
            Assert.All(lines, l => Assert.StartsWith("konfiscator: ", l));
            var m = System.Text.RegularExpressions.Regex.Match(lines[0], @"^konfiscator: pid (\d+) \(ls\): ([\d,]+) malloc, ([\d,]+) free, ");
            Assert.True(m.Success, lines[0]);
            Assert.Equal(p.Id, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
            Assert.True(ulong.Parse(m.Groups[2].Value.Replace(",", ""), CultureInfo.InvariantCulture) > 0);
            Assert.Matches(@"allocated [\d.]+ (B|KiB|MiB), in use at exit .*, peak .*, mapped .* \(\d+ mmap, \d+ munmap\)", lines[1]);
            Assert.Matches(@"free .* in [\d,]+ blocks, largest .*, [\d,]+ coalesces", lines[2]);
        }
    }
}
