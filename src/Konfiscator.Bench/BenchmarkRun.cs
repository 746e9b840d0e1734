using System.Diagnostics;
using System.Globalization;

namespace Konfiscator.Bench;

/// <summary>One benchmark run, step by step (<see cref="BenchmarkRunner.RunAsync"/> is the entry point):
/// find the tools, compile the workloads, probe each allocator's preload, warm up, run the shuffled
/// rounds, make up disturbed runs, and build the results. The state the steps share (samples,
/// progress counts, the seeded shuffle) lives here.</summary>
internal sealed class BenchmarkRun
{
    private readonly BenchOptions _options;
    private readonly IProgress<BenchProgress>? _progress;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly DateTimeOffset _started = DateTimeOffset.Now;
    private readonly IReadOnlyList<WorkloadInfo> _workloads;
    private readonly IReadOnlyList<string> _allocatorNames;
    private readonly int _rounds;
    private readonly double _scale;
    private readonly Random _random;

    private readonly Dictionary<string, string> _unavailable = [];
    private readonly List<string> _extraProblems = [];
    private readonly List<RunSample> _samples = [];
    private int _total, _done, _sequence;

    /// <exception cref="ArgumentException">An unknown workload or allocator name, or bad numbers.</exception>
    public BenchmarkRun(BenchOptions options, IProgress<BenchProgress>? progress)
    {
        _options = options;
        _progress = progress;
        _workloads = BenchmarkRunner.SelectWorkloads(options.Workloads);
        _allocatorNames = BenchmarkRunner.SelectAllocators(options.Allocators, options.IncludeNoStats, options.Libraries);
        _rounds = options.EffectiveRounds;
        if (_rounds < 1) throw new ArgumentException("rounds must be at least 1", nameof(options));
        if (!(options.ScaleFactor > 0)) throw new ArgumentException("the scale factor must be positive", nameof(options));
        _scale = options.EffectiveScale;
        _random = new Random(options.Seed);
    }

    public async Task<BenchResults> ExecuteAsync(CancellationToken ct)
    {
        Report(BenchPhase.Preparing, "looking for allocators, python3 and the C compiler");
        string workDirectory = _options.WorkDirectory ??
            Path.Combine(Path.GetTempPath(), "konfiscator-bench-" + Native.GetUid().ToString(CultureInfo.InvariantCulture));
        WorkloadBuilder.CreatePrivateDirectory(workDirectory);
        string statsDirectory = CreateStatsDirectory(workDirectory);
        try
        {
            var allocators = AllocatorCatalog.Resolve(_allocatorNames, _options, statsDirectory, workDirectory);
            var (python, pythonVersion) = await FindWorkloadToolsAsync(ct).ConfigureAwait(false);
            var runnable = _workloads.Where(w => !_unavailable.ContainsKey(w.Id)).ToList();
            var compiled = await CompileAsync(runnable, workDirectory, ct).ConfigureAwait(false);
            var executor = new RunExecutor(compiled, python, _scale, _options.EffectiveRunTimeout);

            var installed = allocators.Where(a => a.Available).ToList();
            await ProbeAsync(executor, installed, ct).ConfigureAwait(false);
            if (_options.Warmup)
                await WarmUpAsync(executor, runnable, installed.First(a => a.IsBaseline), ct).ConfigureAwait(false);
            await RunRoundsAsync(executor, runnable, installed, ct).ConfigureAwait(false);
            await MakeUpDisturbedRunsAsync(executor, runnable, installed, ct).ConfigureAwait(false);

            var environment = DescribeEnvironment(compiled.CompilerVersion, python is null ? null : $"{python} ({pythonVersion})");
            var results = ResultsBuilder.Build(environment, allocators, _workloads, _samples, _unavailable, _extraProblems);
            _progress?.Report(new BenchProgress(BenchPhase.Finished, $"done in {_clock.Elapsed.TotalSeconds:0.0} s")
            {
                CompletedRuns = _done, TotalRuns = _total, Round = _rounds, Rounds = _rounds, Elapsed = _clock.Elapsed,
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

    private void Report(BenchPhase phase, string message) =>
        _progress?.Report(new BenchProgress(phase, message) { Rounds = _rounds, Elapsed = _clock.Elapsed });

    private void ReportRun(string message, int round, WorkloadInfo w, AllocatorInfo a, RunSample? last = null) =>
        _progress?.Report(new BenchProgress(BenchPhase.Running, message)
        {
            CompletedRuns = _done, TotalRuns = _total, Round = round, Rounds = _rounds, Workload = w.Id,
            Allocator = a.Name, LastRun = last, Elapsed = _clock.Elapsed,
        });

    /// <summary>konfiscator's segments go to a directory of this run's own, on tmpfs like the default
    /// (/dev/shm), so a live exporter never sees the benchmark's processes and nothing is left behind.</summary>
    private static string CreateStatsDirectory(string workDirectory)
    {
        string name = $"konfiscator-bench-stats-{Native.GetUid()}-{Environment.ProcessId}-{Guid.NewGuid():N}";
        string root = Directory.Exists("/dev/shm") ? "/dev/shm" : workDirectory;
        string path = Path.Combine(root, name);
        WorkloadBuilder.CreatePrivateDirectory(path);
        return path;
    }

    /// <summary>python3 and the programs the real-program workloads run; a workload whose tool is
    /// missing is marked unavailable (with the reason), not failed.</summary>
    private async Task<(string? Path, string? Version)> FindWorkloadToolsAsync(CancellationToken ct)
    {
        string? python = null, pythonVersion = null;
        if (_workloads.Any(w => w.IsPython))
        {
            (python, pythonVersion) = await BenchmarkRunner.FindPythonAsync(_options.Python, ct).ConfigureAwait(false);
            if (python is null)
                foreach (var w in _workloads.Where(w => w.IsPython))
                    _unavailable[w.Id] = "python3 not found (install python3, or pass its path)";
        }
        foreach (var w in _workloads.Where(w => w.Tool is not null && !_unavailable.ContainsKey(w.Id)))
            if (BenchmarkRunner.FindOnPath(w.Tool!) is null)
                _unavailable[w.Id] = $"{w.Tool} not found on the PATH (install Debian's {w.Tool})";
        return (python, pythonVersion);
    }

    private async Task<CompiledSet> CompileAsync(List<WorkloadInfo> runnable, string workDirectory, CancellationToken ct)
    {
        Report(BenchPhase.Compiling, "compiling the workloads");
        string compiler = _options.CCompiler ?? BenchmarkRunner.NonEmpty(Environment.GetEnvironmentVariable("CC")) ?? "gcc";
        var sources = WorkloadBuilder.ReadSources(_options.SourceDirectory);
        return await WorkloadBuilder.BuildAsync(sources, runnable.Select(w => w.Source), compiler, workDirectory, ct)
            .ConfigureAwait(false);
    }

    /// <summary>Checks under each allocator that malloc really comes from its library.</summary>
    private async Task ProbeAsync(RunExecutor executor, List<AllocatorInfo> installed, CancellationToken ct)
    {
        foreach (var a in installed)
        {
            Report(BenchPhase.Probing, $"checking that malloc comes from {a.Library ?? "glibc"} under {a.Name}");
            string? failure = await executor.ProbeAsync(a, ct).ConfigureAwait(false);
            if (failure is not null) _extraProblems.Add($"{a.Name}: the preload check program failed: {failure}");
        }
    }

    private async Task WarmUpAsync(RunExecutor executor, List<WorkloadInfo> runnable, AllocatorInfo glibc, CancellationToken ct)
    {
        foreach (var w in runnable)
        {
            Report(BenchPhase.WarmingUp, $"warm-up: {w.Id} under glibc");
            var warm = await executor.RunAsync(w, glibc, 0, 0, ct).ConfigureAwait(false);
            if (!warm.Succeeded) _extraProblems.Add($"{w.Id}: warm-up run under glibc failed: {warm.Error}");
        }
    }

    /// <summary>Every workload under every allocator once per round, in an order shuffled by the
    /// seed; a pair that timed out is not run again in later rounds.</summary>
    private async Task RunRoundsAsync(RunExecutor executor, List<WorkloadInfo> runnable, List<AllocatorInfo> installed,
        CancellationToken ct)
    {
        var pairs = runnable.SelectMany(w => installed.Select(a => (Workload: w, Allocator: a))).ToList();
        _total = pairs.Count * _rounds;
        var timedOut = new HashSet<(string, string)>();
        for (int round = 1; round <= _rounds; round++)
        {
            var order = pairs.ToArray();
            _random.Shuffle(order);
            foreach (var (w, a) in order)
            {
                ct.ThrowIfCancellationRequested();
                _sequence++;
                if (timedOut.Contains((w.Id, a.Name)))
                {
                    _samples.Add(new RunSample
                    {
                        Workload = w.Id, Allocator = a.Name, Round = round, Sequence = _sequence, Succeeded = false,
                        ExitCode = -1, Error = "skipped: an earlier round timed out",
                    });
                    _done++;
                    continue;
                }
                ReportRun($"round {round}/{_rounds}: {w.Id} under {a.Name}", round, w, a);
                var sample = await executor.RunAsync(w, a, round, _sequence, ct).ConfigureAwait(false);
                if (sample.Error?.StartsWith("timed out", StringComparison.Ordinal) == true) timedOut.Add((w.Id, a.Name));
                _samples.Add(sample);
                _done++;
                ReportRun(BenchmarkRunner.Describe(sample), round, w, a, sample);
            }
        }
    }

    /// <summary>Make-up passes: runs that other processes disturbed are made again after all the rounds
    /// (a disturbance often lasts longer than a retry right away would wait), in a shuffled order.
    /// A failure is never replaced by a success; otherwise the least disturbed attempt counts.</summary>
    private async Task MakeUpDisturbedRunsAsync(RunExecutor executor, List<WorkloadInfo> runnable,
        List<AllocatorInfo> installed, CancellationToken ct)
    {
        int retries = _options.EffectiveRetries;
        for (int pass = 1; pass <= retries; pass++)
        {
            var disturbed = Enumerable.Range(0, _samples.Count)
                .Where(i => BenchmarkRunner.Disturbed(_samples[i], _options.MaxOtherCpuLoad)).ToArray();
            if (disturbed.Length == 0) break;
            _random.Shuffle(disturbed);
            int left = disturbed.Length;
            foreach (int i in disturbed)
            {
                ct.ThrowIfCancellationRequested();
                var old = _samples[i];
                var w = runnable.First(x => x.Id == old.Workload);
                var a = installed.First(x => x.Name == old.Allocator);
                ReportRun($"make-up pass {pass}/{retries}: {w.Id} under {a.Name} again ({left--} left; other processes used " +
                          $"{old.OtherCpuLoad * 100:0}% of the CPUs during round {old.Round})", _rounds, w, a);
                var again = await executor.RunAsync(w, a, old.Round, ++_sequence, ct).ConfigureAwait(false);
                _samples[i] = !again.Succeeded || again.OtherCpuLoad < old.OtherCpuLoad
                    ? again with { Attempts = old.Attempts + 1 }
                    : old with { Attempts = old.Attempts + 1 };
                ReportRun(BenchmarkRunner.Describe(again), _rounds, w, a, again);
            }
        }
    }

    private BenchEnvironment DescribeEnvironment(string compilerVersion, string? python) => new()
    {
        Cpu = BenchmarkRunner.CpuModel(),
        Cores = Environment.ProcessorCount,
        Kernel = BenchmarkRunner.KernelRelease(),
        Glibc = Native.GlibcVersion(),
        Compiler = compilerVersion,
        Python = python,
        StartedAt = _started,
        Duration = _clock.Elapsed,
        Quick = _options.Quick,
        Rounds = _rounds,
        Seed = _options.Seed,
        Scale = _scale,
        MaxOtherCpuLoad = _options.MaxOtherCpuLoad,
        RepeatedRuns = _samples.Count(x => x.Attempts > 1),
    };
}
