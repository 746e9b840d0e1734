using System.Diagnostics;
using System.Globalization;

namespace Konfiscator.Bench;

/// <summary>The benchmark: the same workloads under glibc and the preloaded allocators, interleaved.
///
/// <code>
/// var results = await BenchmarkRunner.RunAsync(new BenchOptions { Quick = true }, progress, ct);
/// File.WriteAllText("bench.md", Reports.MarkdownReport.Write(results));
/// </code>
///
/// How it measures: every run is a fresh process started by a small C wrapper (bench/runner.c)
/// that forks, sets LD_PRELOAD for the child only (none for glibc), execs the workload and reports
/// the child's wall time (fork to wait4) and peak RSS (wait4's ru_maxrss). Each round runs every
/// workload under every installed allocator once, in an order shuffled by the seed, so slow drifts
/// of a shared machine spread over all allocators alike. Before the rounds, a probe program checks
/// under each allocator that malloc really comes from the preloaded library (and throws
/// <see cref="BenchmarkException"/> if not); every measured run checks it again.</summary>
public static class BenchmarkRunner
{
    /// <summary>Every workload, in table order.</summary>
    public static IReadOnlyList<WorkloadInfo> Workloads => WorkloadCatalog.All;

    /// <summary>Every allocator name the options accept, in table order.</summary>
    public static IReadOnlyList<string> AllocatorNames => AllocatorCatalog.Names;

    /// <summary>Runs the benchmark. Failed runs (crashes, timeouts, wrong output) are recorded in the
    /// results, not thrown; a missing allocator is reported as not installed.</summary>
    /// <exception cref="ArgumentException">An unknown workload or allocator name, or bad numbers.</exception>
    /// <exception cref="BenchmarkException">The harness cannot measure: no compiler, a workload does not
    /// compile, a preload does not take effect.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the running workload is killed.</exception>
    public static async Task<BenchResults> RunAsync(BenchOptions options, IProgress<BenchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        DateTimeOffset started = DateTimeOffset.Now;
        var workloads = SelectWorkloads(options.Workloads);
        var allocatorNames = SelectAllocators(options.Allocators, options.IncludeNoStats);
        int rounds = options.EffectiveRounds;
        if (rounds < 1) throw new ArgumentException("rounds must be at least 1", nameof(options));
        if (!(options.ScaleFactor > 0)) throw new ArgumentException("the scale factor must be positive", nameof(options));
        double scale = options.EffectiveScale;

        void Report(BenchPhase phase, string message) =>
            progress?.Report(new BenchProgress(phase, message) { Rounds = rounds, Elapsed = clock.Elapsed });

        Report(BenchPhase.Preparing, "looking for allocators, python3 and the C compiler");
        string workDirectory = options.WorkDirectory ??
            Path.Combine(Path.GetTempPath(), "konfiscator-bench-" + Native.GetUid().ToString(CultureInfo.InvariantCulture));
        WorkloadBuilder.CreatePrivateDirectory(workDirectory);
        string statsDirectory = StatsDirectory(workDirectory);
        try
        {
            var allocators = AllocatorCatalog.Resolve(allocatorNames, options, statsDirectory, workDirectory);
            var unavailable = new Dictionary<string, string>();
            string? python = null, pythonVersion = null;
            if (workloads.Any(w => w.IsPython))
            {
                (python, pythonVersion) = await FindPythonAsync(options.Python, cancellationToken).ConfigureAwait(false);
                if (python is null)
                    foreach (var w in workloads.Where(w => w.IsPython))
                        unavailable[w.Id] = "python3 not found (install python3, or pass its path)";
            }

            foreach (var w in workloads.Where(w => w.Tool is not null && !unavailable.ContainsKey(w.Id)))
                if (FindOnPath(w.Tool!) is null)
                    unavailable[w.Id] = $"{w.Tool} not found on the PATH (install Debian's {w.Tool})";

            Report(BenchPhase.Compiling, "compiling the workloads");
            string compiler = options.CCompiler ?? NonEmpty(Environment.GetEnvironmentVariable("CC")) ?? "gcc";
            var sources = WorkloadBuilder.ReadSources(options.SourceDirectory);
            var runnable = workloads.Where(w => !unavailable.ContainsKey(w.Id)).ToList();
            var compiled = await WorkloadBuilder.BuildAsync(sources, runnable.Select(w => w.Source), compiler, workDirectory,
                cancellationToken).ConfigureAwait(false);
            var executor = new RunExecutor(compiled, python, scale, options.EffectiveRunTimeout);

            var installed = allocators.Where(a => a.Available).ToList();
            var extraProblems = new List<string>();
            foreach (var a in installed)
            {
                Report(BenchPhase.Probing, $"checking that malloc comes from {a.Library ?? "glibc"} under {a.Name}");
                string? failure = await executor.ProbeAsync(a, cancellationToken).ConfigureAwait(false);
                if (failure is not null) extraProblems.Add($"{a.Name}: the preload check program failed: {failure}");
            }

            var glibc = installed.First(a => a.IsBaseline);
            if (options.Warmup)
            {
                foreach (var w in runnable)
                {
                    Report(BenchPhase.WarmingUp, $"warm-up: {w.Id} under glibc");
                    var warm = await executor.RunAsync(w, glibc, 0, 0, cancellationToken).ConfigureAwait(false);
                    if (!warm.Succeeded) extraProblems.Add($"{w.Id}: warm-up run under glibc failed: {warm.Error}");
                }
            }

            var samples = new List<RunSample>();
            var pairs = runnable.SelectMany(w => installed.Select(a => (Workload: w, Allocator: a))).ToList();
            int total = pairs.Count * rounds, done = 0, sequence = 0;
            var timedOut = new HashSet<(string, string)>();
            int retries = options.EffectiveRetries;
            var random = new Random(options.Seed);
            for (int round = 1; round <= rounds; round++)
            {
                var order = pairs.ToArray();
                random.Shuffle(order);
                foreach (var (w, a) in order)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    sequence++;
                    if (timedOut.Contains((w.Id, a.Name)))
                    {
                        samples.Add(new RunSample
                        {
                            Workload = w.Id, Allocator = a.Name, Round = round, Sequence = sequence, Succeeded = false,
                            ExitCode = -1, Error = "skipped: an earlier round timed out",
                        });
                        done++;
                        continue;
                    }
                    progress?.Report(new BenchProgress(BenchPhase.Running, $"round {round}/{rounds}: {w.Id} under {a.Name}")
                    {
                        CompletedRuns = done, TotalRuns = total, Round = round, Rounds = rounds, Workload = w.Id,
                        Allocator = a.Name, Elapsed = clock.Elapsed,
                    });
                    var sample = await executor.RunAsync(w, a, round, sequence, cancellationToken).ConfigureAwait(false);
                    if (sample.Error?.StartsWith("timed out", StringComparison.Ordinal) == true) timedOut.Add((w.Id, a.Name));
                    samples.Add(sample);
                    done++;
                    progress?.Report(new BenchProgress(BenchPhase.Running, Describe(sample))
                    {
                        CompletedRuns = done, TotalRuns = total, Round = round, Rounds = rounds, Workload = w.Id,
                        Allocator = a.Name, LastRun = sample, Elapsed = clock.Elapsed,
                    });
                }
            }

            // Make-up passes: runs that other processes disturbed are made again after all the rounds
            // (a disturbance often lasts longer than a retry right away would wait), in a shuffled order.
            // A failure is never replaced by a success; otherwise the least disturbed attempt counts.
            for (int pass = 1; pass <= retries; pass++)
            {
                var disturbed = Enumerable.Range(0, samples.Count).Where(i => Disturbed(samples[i], options.MaxOtherCpuLoad)).ToArray();
                if (disturbed.Length == 0) break;
                random.Shuffle(disturbed);
                int left = disturbed.Length;
                foreach (int i in disturbed)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var old = samples[i];
                    var w = runnable.First(x => x.Id == old.Workload);
                    var a = installed.First(x => x.Name == old.Allocator);
                    progress?.Report(new BenchProgress(BenchPhase.Running,
                        $"make-up pass {pass}/{retries}: {w.Id} under {a.Name} again ({left--} left; other processes used " +
                        $"{old.OtherCpuLoad * 100:0}% of the CPUs during round {old.Round})")
                    {
                        CompletedRuns = done, TotalRuns = total, Round = rounds, Rounds = rounds, Workload = w.Id,
                        Allocator = a.Name, Elapsed = clock.Elapsed,
                    });
                    var again = await executor.RunAsync(w, a, old.Round, ++sequence, cancellationToken).ConfigureAwait(false);
                    samples[i] = !again.Succeeded || again.OtherCpuLoad < old.OtherCpuLoad
                        ? again with { Attempts = old.Attempts + 1 }
                        : old with { Attempts = old.Attempts + 1 };
                    progress?.Report(new BenchProgress(BenchPhase.Running, Describe(again))
                    {
                        CompletedRuns = done, TotalRuns = total, Round = rounds, Rounds = rounds, Workload = w.Id,
                        Allocator = a.Name, LastRun = again, Elapsed = clock.Elapsed,
                    });
                }
            }
            int repeated = samples.Count(x => x.Attempts > 1);

            var environment = new BenchEnvironment
            {
                Cpu = CpuModel(),
                Cores = Environment.ProcessorCount,
                Kernel = KernelRelease(),
                Glibc = Native.GlibcVersion(),
                Compiler = compiled.CompilerVersion,
                Python = python is null ? null : $"{python} ({pythonVersion})",
                StartedAt = started,
                Duration = clock.Elapsed,
                Quick = options.Quick,
                Rounds = rounds,
                Seed = options.Seed,
                Scale = scale,
                MaxOtherCpuLoad = options.MaxOtherCpuLoad,
                RepeatedRuns = repeated,
            };
            var results = ResultsBuilder.Build(environment, allocators, workloads, samples, unavailable, extraProblems);
            progress?.Report(new BenchProgress(BenchPhase.Finished, $"done in {clock.Elapsed.TotalSeconds:0.0} s")
            {
                CompletedRuns = done, TotalRuns = total, Round = rounds, Rounds = rounds, Elapsed = clock.Elapsed,
            });
            return results;
        }
        finally
        {
            try { Directory.Delete(statsDirectory, recursive: true); }
            catch (IOException) { /* a segment still open: the next sweep removes it */ }
            catch (UnauthorizedAccessException) { /* not ours to remove */ }
        }
    }

    internal static IReadOnlyList<WorkloadInfo> SelectWorkloads(IReadOnlyList<string>? ids)
    {
        if (ids is null || ids.Count == 0) return WorkloadCatalog.All;
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string id in ids)
        {
            var w = WorkloadCatalog.Find(id) ?? throw new ArgumentException(
                $"unknown workload '{id}'; known: {string.Join(", ", WorkloadCatalog.All.Select(x => x.Id))}", nameof(ids));
            chosen.Add(w.Id);
        }
        return WorkloadCatalog.All.Where(w => chosen.Contains(w.Id)).ToList();
    }

    internal static IReadOnlyList<string> SelectAllocators(IReadOnlyList<string>? names, bool includeNoStats)
    {
        var chosen = new HashSet<string>(StringComparer.Ordinal) { AllocatorCatalog.Glibc };
        foreach (string name in names is null || names.Count == 0 ? AllocatorCatalog.Defaults : names)
            chosen.Add(AllocatorCatalog.Canonical(name) ?? throw new ArgumentException(
                $"unknown allocator '{name}'; known: {string.Join(", ", AllocatorCatalog.Names)}", nameof(names)));
        if (includeNoStats) chosen.Add(AllocatorCatalog.KonfiscatorNoStats);
        return AllocatorCatalog.Names.Where(chosen.Contains).ToList();
    }

    private static bool Disturbed(RunSample s, double max) => s.Succeeded && s.OtherCpuLoad is double load && load > max;

    private static string Describe(RunSample s) => s.Succeeded
        ? string.Create(CultureInfo.InvariantCulture,
            $"{s.Workload} under {s.Allocator}: {s.WallSeconds * 1000:0} ms, {s.PeakRssBytes / 1048576.0:0.0} MiB")
        : $"{s.Workload} under {s.Allocator}: FAILED: {s.Error}";

    /// <summary>konfiscator's segments go to a directory of this run's own, on tmpfs like the default
    /// (/dev/shm), so a live exporter never sees the benchmark's processes and nothing is left behind.</summary>
    private static string StatsDirectory(string workDirectory)
    {
        string name = $"konfiscator-bench-stats-{Native.GetUid()}-{Environment.ProcessId}-{Guid.NewGuid():N}";
        string root = Directory.Exists("/dev/shm") ? "/dev/shm" : workDirectory;
        string path = Path.Combine(root, name);
        WorkloadBuilder.CreatePrivateDirectory(path);
        return path;
    }

    private static async Task<(string? Path, string? Version)> FindPythonAsync(string? configured, CancellationToken ct)
    {
        var candidates = new List<string>();
        if (configured is not null) candidates.Add(configured);
        else
        {
            candidates.Add("/usr/bin/python3");
            candidates.Add("python3");
        }
        foreach (string candidate in candidates)
        {
            if (candidate.Contains('/') && !File.Exists(candidate)) continue;
            try
            {
                // sys.executable is the interpreter itself, past any wrapper script (pyenv's shims),
                // so that only python is preloaded.
                var (code, output) = await ProcessUtil.RunAsync(candidate,
                    ["-I", "-c", "import sys, platform; print(sys.executable); print(platform.python_version())"],
                    TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
                var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (code == 0 && lines.Length >= 2 && File.Exists(lines[0])) return (lines[0], lines[1]);
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // not there
            }
        }
        return (null, null);
    }

    /// <summary>The first executable file of that name in a PATH directory, or null.</summary>
    internal static string? FindOnPath(string program)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string path = Path.Combine(dir, program);
            if (File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return path;
        }
        return null;
    }

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    private static string CpuModel()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.Contains(':', StringComparison.Ordinal))
                    return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return "unknown CPU";
    }

    private static string KernelRelease()
    {
        try { return File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); }
        catch (IOException) { return Environment.OSVersion.VersionString; }
        catch (UnauthorizedAccessException) { return Environment.OSVersion.VersionString; }
    }
}
