using System.Diagnostics;
using Konfiscator.Stats;
using System.Globalization;
using System.Text.Json;

namespace Konfiscator.Bench;

/// <summary>Runs one workload once under one allocator through the measuring wrapper
/// (bench/runner.c) and turns what it printed into a <see cref="RunSample"/>.</summary>
internal sealed class RunExecutor(CompiledSet compiled, string? python, double scale, TimeSpan timeout)
{
    private const int StderrTailLines = 3;

    /// <summary>The command line the wrapper runs for a workload (after "--").</summary>
    public IReadOnlyList<string> WorkloadCommand(WorkloadInfo workload)
    {
        var command = new List<string>();
        string program = compiled.Programs[workload.Source];
        if (workload.IsPython)
        {
            command.Add(python ?? throw new InvalidOperationException("no python3"));
            command.Add("-I"); // isolated: no user site, no PYTHON* variables, no script directory in the path
            command.Add(program);
        }
        else
        {
            command.Add(program);
        }
        command.AddRange(workload.Arguments);
        command.Add("scale=" + scale.ToString("R", CultureInfo.InvariantCulture));
        return command;
    }

    public async Task<RunSample> RunAsync(WorkloadInfo workload, AllocatorInfo allocator, int round, int sequence,
        CancellationToken cancellationToken)
    {
        var sample = await RunCommandAsync(WorkloadCommand(workload), allocator, cancellationToken).ConfigureAwait(false);
        return sample with { Workload = workload.Id, Round = round, Sequence = sequence };
    }

    /// <summary>Runs the probe under an allocator. Throws when malloc did not come from the right
    /// library (the comparison would be meaningless); returns the error when the probe failed
    /// otherwise (a crash is the allocator's failure, reported with its runs), else null.</summary>
    public async Task<string?> ProbeAsync(AllocatorInfo allocator, CancellationToken cancellationToken)
    {
        var sample = await RunCommandAsync([compiled.Probe], allocator, cancellationToken).ConfigureAwait(false);
        if (sample.Succeeded) return null;
        if (sample.Error?.StartsWith("PRELOAD", StringComparison.Ordinal) == true)
            throw new BenchmarkException($"preload check under {allocator.Name} failed: {sample.Error}");
        return sample.Error;
    }

    private async Task<RunSample> RunCommandAsync(IReadOnlyList<string> command, AllocatorInfo allocator,
        CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(compiled.Runner)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (allocator.Library is not null)
        {
            psi.ArgumentList.Add("--preload");
            psi.ArgumentList.Add(allocator.Library);
        }
        psi.ArgumentList.Add("--");
        foreach (string c in command) psi.ArgumentList.Add(c);
        // The wrapper sets LD_PRELOAD for the workload only; nothing else of the user's allocator
        // settings leaks from one allocator's runs into another's.
        psi.Environment.Remove("LD_PRELOAD");
        psi.Environment.Remove(StatsSchema.PublishVariable);
        psi.Environment.Remove(StatsSchema.DirectoryVariable);
        psi.Environment["LC_ALL"] = "C";
        foreach (var (k, v) in allocator.Environment) psi.Environment[k] = v;

        var sample = new RunSample { Workload = "", Allocator = allocator.Name };
        long? busyBefore = CpuBusyTicks();
        long started = Stopwatch.GetTimestamp();
        using var process = Process.Start(psi) ?? throw new BenchmarkException($"cannot start {compiled.Runner}");
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(timeout);
        Task<string> stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(timer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { /* already gone */ }
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return sample with
            {
                Succeeded = false, WallSeconds = timeout.TotalSeconds, ExitCode = -1, Signal = 9,
                Error = $"timed out after {timeout.TotalSeconds:0} s (killed)",
            };
        }
        long? busyAfter = CpuBusyTicks();
        double window = Stopwatch.GetElapsedTime(started).TotalSeconds;
        string stdout = await stdoutTask.ConfigureAwait(false);
        string stderr = await stderrTask.ConfigureAwait(false);
        var result = Interpret(sample, stdout, stderr, process.ExitCode, allocator);
        if (busyBefore is long b0 && busyAfter is long b1 && window > 0)
        {
            double other = (b1 - b0) / (double)ClockTicks - result.UserSeconds - result.SystemSeconds;
            result = result with { OtherCpuLoad = Math.Clamp(other / (window * Environment.ProcessorCount), 0, 1) };
        }
        return result;
    }

    private static readonly long ClockTicks = Native.ClockTicks();

    /// <summary>Busy ticks of all CPUs so far (/proc/stat: user, nice, system, irq, softirq, steal), or null.</summary>
    internal static long? CpuBusyTicks()
    {
        try
        {
            using var reader = new StreamReader("/proc/stat");
            string? line = reader.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal)) return null;
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long Field(int i) => i < f.Length && long.TryParse(f[i], NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v : 0;
            return Field(1) + Field(2) + Field(3) + Field(6) + Field(7) + Field(8);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Reads the wrapper's line (the last one with "runner") and the workload's (the last
    /// other JSON line with "workload") and decides whether the run counts.</summary>
    internal static RunSample Interpret(RunSample sample, string stdout, string stderr, int wrapperExit, AllocatorInfo allocator)
    {
        JsonElement? runner = null, result = null;
        string? resultLine = null;
        foreach (string raw in stdout.Split('\n'))
        {
            string line = raw.Trim();
            if (!line.StartsWith('{')) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) continue;
                if (doc.RootElement.TryGetProperty("runner", out _)) runner = doc.RootElement.Clone();
                else if (doc.RootElement.TryGetProperty("workload", out _)) { result = doc.RootElement.Clone(); resultLine = line; }
            }
            catch (JsonException)
            {
                // not a result line
            }
        }
        string tail = StderrTail(stderr);
        if (runner is not JsonElement r)
            return sample with { Succeeded = false, ExitCode = wrapperExit, Error = $"the measuring wrapper failed (exit {wrapperExit}){tail}" };

        int exit = r.GetProperty("exit_code").GetInt32();
        int signal = r.GetProperty("signal").GetInt32();
        sample = sample with
        {
            ExitCode = exit,
            Signal = signal,
            WallSeconds = r.GetProperty("wall_ns").GetInt64() / 1e9,
            PeakRssBytes = r.GetProperty("maxrss_kib").GetInt64() * 1024,
            UserSeconds = r.GetProperty("utime_ns").GetInt64() / 1e9,
            SystemSeconds = r.GetProperty("stime_ns").GetInt64() / 1e9,
            MinorFaults = r.GetProperty("minflt").GetInt64(),
            Output = resultLine,
        };
        if (result is JsonElement w)
        {
            sample = sample with
            {
                MallocLibrary = w.TryGetProperty("malloc_lib", out var lib) ? lib.GetString() : null,
                Checksum = w.TryGetProperty("checksum", out var sum) ? sum.GetRawText() : null,
                WorkloadSeconds = w.TryGetProperty("elapsed_ns", out var ns) && ns.TryGetInt64(out long n) ? n / 1e9 : null,
                PeakLiveBytes = w.TryGetProperty("peak_live_bytes", out var live) && live.TryGetInt64(out long l) ? l : null,
                Pairs = w.TryGetProperty("pairs", out var pairs) && pairs.TryGetInt64(out long p) && p > 0 ? p : null,
            };
        }
        if (signal != 0)
            return sample with { Succeeded = false, Error = $"killed by {SignalName(signal)}{tail}" };
        if (exit == 127)
            return sample with { Succeeded = false, Error = $"could not start the program{tail}" };
        if (exit != 0)
            return sample with { Succeeded = false, Error = $"exited with status {exit}{tail}" };
        if (result is null)
            return sample with { Succeeded = false, Error = $"printed no result line{tail}" };
        string? wrong = WrongMalloc(sample.MallocLibrary, allocator);
        if (wrong is not null)
            return sample with { Succeeded = false, Error = wrong };
        return sample with { Succeeded = true };
    }

    /// <summary>Null when malloc came from where it should: glibc's libc for the baseline, the
    /// preloaded library otherwise; else the complaint.</summary>
    internal static string? WrongMalloc(string? mallocLibrary, AllocatorInfo allocator)
    {
        if (string.IsNullOrEmpty(mallocLibrary) || mallocLibrary == "?")
            return $"PRELOAD CHECK FAILED: the workload could not tell which library defines malloc (expected {Expected(allocator)})";
        bool ok = allocator.Library is null
            ? IsLibc(mallocLibrary)
            : Native.Canonical(mallocLibrary) == Native.Canonical(allocator.Library);
        return ok ? null
            : $"PRELOAD NOT IN EFFECT: malloc came from {mallocLibrary}, expected {Expected(allocator)}";
    }

    private static string Expected(AllocatorInfo allocator) => allocator.Library ?? "glibc's libc.so.6";

    private static bool IsLibc(string path)
    {
        string name = Path.GetFileName(path);
        return name.StartsWith("libc.so", StringComparison.Ordinal) || name.StartsWith("libc-2.", StringComparison.Ordinal);
    }

    internal static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal " + signal.ToString(CultureInfo.InvariantCulture),
    };

    private static string StderrTail(string stderr)
    {
        var lines = stderr.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).TakeLast(StderrTailLines).ToList();
        if (lines.Count == 0) return "";
        string text = string.Join(" / ", lines);
        if (text.Length > 300) text = text[..300] + "…";
        return ": " + text;
    }
}
