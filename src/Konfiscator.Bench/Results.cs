namespace Konfiscator.Bench;

/// <summary>Where the benchmark ran and how.</summary>
public sealed record BenchEnvironment
{
    /// <summary>The CPU model (from /proc/cpuinfo).</summary>
    public string Cpu { get; init; } = "";
    /// <summary>Logical CPUs this process may use.</summary>
    public int Cores { get; init; }
    /// <summary>Kernel release.</summary>
    public string Kernel { get; init; } = "";
    /// <summary>glibc's version (the baseline allocator's).</summary>
    public string? Glibc { get; init; }
    /// <summary>The C compiler's version.</summary>
    public string? Compiler { get; init; }
    /// <summary>The python3 used by the real-program workload, and its version.</summary>
    public string? Python { get; init; }
    /// <summary>When the run started.</summary>
    public DateTimeOffset StartedAt { get; init; }
    /// <summary>How long the whole run took.</summary>
    public TimeSpan Duration { get; init; }
    /// <summary>Quick mode (sizes ÷10): a smoke test, not a measurement.</summary>
    public bool Quick { get; init; }
    /// <summary>Rounds run.</summary>
    public int Rounds { get; init; }
    /// <summary>The seed of the run order.</summary>
    public int Seed { get; init; }
    /// <summary>The size multiplier the workloads got (1 normal, 0.1 quick).</summary>
    public double Scale { get; init; }
    /// <summary>Median over the measured runs of the share of the CPUs other processes used meanwhile.</summary>
    public double? OtherCpuLoadMedian { get; init; }
    /// <summary>The highest such share in any measured run.</summary>
    public double? OtherCpuLoadMax { get; init; }
    /// <summary>The share of the CPUs used by other processes above which a run was repeated.</summary>
    public double MaxOtherCpuLoad { get; init; }
    /// <summary>Measured runs that were repeated because other processes disturbed them.</summary>
    public int RepeatedRuns { get; init; }
}

/// <summary>How one workload under one allocator went.</summary>
public enum CellStatus
{
    /// <summary>Every run succeeded.</summary>
    Ok,
    /// <summary>At least one run failed (crash, non-zero exit, timeout, wrong output, preload not in effect).</summary>
    Failed,
    /// <summary>The allocator's library is not installed; nothing ran.</summary>
    NotInstalled,
    /// <summary>The workload cannot run here (e.g. no python3); nothing ran.</summary>
    Unavailable,
}

/// <summary>One run of one workload under one allocator.</summary>
public sealed record RunSample
{
    /// <summary>Workload id.</summary>
    public required string Workload { get; init; }
    /// <summary>Allocator name.</summary>
    public required string Allocator { get; init; }
    /// <summary>1-based round.</summary>
    public int Round { get; init; }
    /// <summary>Position in the whole run (1-based), to see interleaving.</summary>
    public int Sequence { get; init; }
    /// <summary>True when the run counts: exit 0, a result line, the right malloc, the right checksum.</summary>
    public bool Succeeded { get; init; }
    /// <summary>Why it failed, in one line (with the end of the program's stderr).</summary>
    public string? Error { get; init; }
    /// <summary>Wall time of the process, fork to wait4.</summary>
    public double WallSeconds { get; init; }
    /// <summary>Peak resident set of the process (wait4's ru_maxrss).</summary>
    public long PeakRssBytes { get; init; }
    /// <summary>User CPU time.</summary>
    public double UserSeconds { get; init; }
    /// <summary>System CPU time.</summary>
    public double SystemSeconds { get; init; }
    /// <summary>Minor page faults.</summary>
    public long MinorFaults { get; init; }
    /// <summary>Exit code (-1 when killed by a signal).</summary>
    public int ExitCode { get; init; }
    /// <summary>The signal that killed it, or 0.</summary>
    public int Signal { get; init; }
    /// <summary>The library that defined the process's malloc, as the workload saw it.</summary>
    public string? MallocLibrary { get; init; }
    /// <summary>The workload's checksum of what it read back from its blocks (the same for every allocator).</summary>
    public string? Checksum { get; init; }
    /// <summary>The time the workload measured itself for its main loop.</summary>
    public double? WorkloadSeconds { get; init; }
    /// <summary>Peak of the sum of requested sizes alive at once, when the workload tracks it.</summary>
    public long? PeakLiveBytes { get; init; }
    /// <summary>malloc+free pairs the workload's timed loop made, when it counts them.</summary>
    public long? Pairs { get; init; }
    /// <summary>Share of all CPUs that other processes kept busy while this run ran (0..1): from
    /// /proc/stat's busy time over the run, minus the run's own CPU time. High values mean the
    /// machine was shared at that moment and the time is suspect.</summary>
    public double? OtherCpuLoad { get; init; }
    /// <summary>How many times this run was made (more than 1 when it was disturbed by other processes
    /// and made again in a make-up pass after the rounds; the least disturbed attempt is kept).</summary>
    public int Attempts { get; init; } = 1;
    /// <summary>The workload's result line, as printed.</summary>
    public string? Output { get; init; }
}

/// <summary>A workload under an allocator: medians over the rounds and ratios to glibc.</summary>
public sealed record CellResult
{
    /// <summary>Workload id.</summary>
    public required string Workload { get; init; }
    /// <summary>Allocator name.</summary>
    public required string Allocator { get; init; }
    /// <summary>Whether it ran, and whether every run succeeded.</summary>
    public CellStatus Status { get; init; }
    /// <summary>Every run, in the order they ran.</summary>
    public IReadOnlyList<RunSample> Runs { get; init; } = [];
    /// <summary>Runs that succeeded (the medians are over these).</summary>
    public int SucceededRuns { get; init; }
    /// <summary>Median wall time of the successful runs.</summary>
    public double? MedianWallSeconds { get; init; }
    /// <summary>Fastest successful run.</summary>
    public double? MinWallSeconds { get; init; }
    /// <summary>Slowest successful run.</summary>
    public double? MaxWallSeconds { get; init; }
    /// <summary>Median wall time / glibc's median wall time (lower is faster).</summary>
    public double? TimeRatio { get; init; }
    /// <summary>The lowest of the round-by-round time ratios: in each round where both succeeded,
    /// this allocator's run over glibc's run of the same round. The rounds interleave every
    /// allocator, so a round's ratio compares runs made moments apart; how far the ratios of the
    /// rounds lie apart shows how much the median ratio can be trusted on this machine.</summary>
    public double? RoundRatioLow { get; init; }
    /// <summary>The highest of the round-by-round time ratios (see <see cref="RoundRatioLow"/>).</summary>
    public double? RoundRatioHigh { get; init; }
    /// <summary>Median peak RSS of the successful runs.</summary>
    public long? MedianPeakRssBytes { get; init; }
    /// <summary>Median peak RSS / glibc's.</summary>
    public double? RssRatio { get; init; }
    /// <summary>Peak live bytes the workload reported (the same in every run), if it tracks them.</summary>
    public long? PeakLiveBytes { get; init; }
    /// <summary>Median peak RSS / peak live bytes: 1.0 would be no waste at all.</summary>
    public double? RssPerLiveByte { get; init; }
    /// <summary>Median over the successful runs of the workload's own loop time per malloc+free
    /// pair, in nanoseconds (workloads that count their pairs only).</summary>
    public double? NsPerPair { get; init; }
    /// <summary>NsPerPair / glibc's.</summary>
    public double? NsPerPairRatio { get; init; }
    /// <summary>Why it did not run, or the first failure.</summary>
    public string? Note { get; init; }
}

/// <summary>One allocator over all workloads.</summary>
public sealed record AllocatorSummary
{
    /// <summary>Allocator name.</summary>
    public required string Allocator { get; init; }
    /// <summary>Geometric mean over the workloads of the time ratio to glibc.</summary>
    public double? TimeRatioGeometricMean { get; init; }
    /// <summary>Geometric mean over the workloads of the peak RSS ratio to glibc.</summary>
    public double? RssRatioGeometricMean { get; init; }
    /// <summary>The geometric mean of one round's time ratios (each run over glibc's run of the same
    /// round), over the workloads that have a ratio in every round: the lowest over the rounds.</summary>
    public double? RoundGeometricMeanLow { get; init; }
    /// <summary>The highest such per-round geometric mean (see <see cref="RoundGeometricMeanLow"/>).</summary>
    public double? RoundGeometricMeanHigh { get; init; }
    /// <summary>Workloads in the means (with a median for this allocator and for glibc).</summary>
    public int WorkloadsCounted { get; init; }
    /// <summary>Workloads with at least one failed run.</summary>
    public int WorkloadsFailed { get; init; }
    /// <summary>2-thread throughput / 1-thread throughput of the working-set workload: 2 × t(1T) / t(2T).</summary>
    public double? ThreadScaling { get; init; }
    /// <summary>Peak RSS / peak live bytes of the fragmentation workload.</summary>
    public double? FragmentationRssPerLiveByte { get; init; }
}

/// <summary>The time of one workload under konfiscator relative to konfiscator with KONFISCATOR_STATS=0.</summary>
/// <param name="Workload">Workload id.</param>
/// <param name="Ratio">t(stats on) / t(stats off); 1.05 means publishing costs 5%.</param>
public sealed record WorkloadRatio(string Workload, double? Ratio);

/// <summary>What publishing statistics costs, per workload and overall.</summary>
/// <param name="Workloads">The ratio per workload.</param>
/// <param name="GeometricMean">Their geometric mean.</param>
public sealed record StatsOverhead(IReadOnlyList<WorkloadRatio> Workloads, double? GeometricMean);

/// <summary>The outcome of a benchmark run. Writers: <see cref="Reports.MarkdownReport"/>,
/// <see cref="Reports.JsonReport"/>, <see cref="Reports.SvgChart"/>, <see cref="Reports.ReportFiles"/>.</summary>
public sealed class BenchResults
{
    /// <summary>Machine and run settings.</summary>
    public required BenchEnvironment Environment { get; init; }
    /// <summary>Every requested allocator, installed or not, in table order.</summary>
    public required IReadOnlyList<AllocatorInfo> Allocators { get; init; }
    /// <summary>The workloads run, in table order.</summary>
    public required IReadOnlyList<WorkloadInfo> Workloads { get; init; }
    /// <summary>One cell per workload × allocator.</summary>
    public required IReadOnlyList<CellResult> Cells { get; init; }
    /// <summary>One summary per allocator (glibc included: its ratios are 1).</summary>
    public required IReadOnlyList<AllocatorSummary> Summaries { get; init; }
    /// <summary>Present when konfiscator-nostats ran beside konfiscator.</summary>
    public StatsOverhead? StatsOverhead { get; init; }
    /// <summary>Everything that went wrong, one line each (failed runs, allocators not installed…).</summary>
    public required IReadOnlyList<string> Problems { get; init; }

    /// <summary>The cell of a workload under an allocator, or null.</summary>
    public CellResult? Cell(string workload, string allocator) =>
        Cells.FirstOrDefault(c => c.Workload == workload && c.Allocator == allocator);

    /// <summary>The summary of an allocator, or null.</summary>
    public AllocatorSummary? Summary(string allocator) => Summaries.FirstOrDefault(s => s.Allocator == allocator);

    /// <summary>True when any run failed (a crash, wrong output, a timeout…); not-installed allocators do not count.</summary>
    public bool HasFailures => Cells.Any(c => c.Status == CellStatus.Failed);

    /// <summary>True when a run under glibc, one of Konfiscator's own variants or a named library failed: what the
    /// benchmark is for. A third-party allocator's failure (Debian 12's mimalloc 2.0.9 returns a misaligned
    /// block to the aligned workload) is that allocator's bug, shown in the tables and problems, not ours.</summary>
    public bool HasOwnFailures => Cells.Any(c => c.Status == CellStatus.Failed
        && Allocators.Any(a => a.Name == c.Allocator && a.IsOwn));
}
