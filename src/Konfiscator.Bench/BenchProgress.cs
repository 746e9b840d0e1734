namespace Konfiscator.Bench;

/// <summary>The stages of a run, in order.</summary>
public enum BenchPhase
{
    /// <summary>Finding allocators, python, the compiler.</summary>
    Preparing,
    /// <summary>Compiling the workload programs (or finding them in the cache).</summary>
    Compiling,
    /// <summary>Checking that every preload takes effect.</summary>
    Probing,
    /// <summary>One unmeasured run of each workload under glibc.</summary>
    WarmingUp,
    /// <summary>The measured rounds.</summary>
    Running,
    /// <summary>Done; results are being put together.</summary>
    Finished,
}

/// <summary>A progress report. <see cref="LastRun"/> is set when a measured run has just ended.</summary>
/// <param name="Phase">The stage.</param>
/// <param name="Message">One line for a person, e.g. "round 2/5: fifo under jemalloc".</param>
public sealed record BenchProgress(BenchPhase Phase, string Message)
{
    /// <summary>Measured runs finished so far.</summary>
    public int CompletedRuns { get; init; }
    /// <summary>Measured runs planned (rounds × workloads × installed allocators).</summary>
    public int TotalRuns { get; init; }
    /// <summary>Current round (1-based), 0 before the rounds.</summary>
    public int Round { get; init; }
    /// <summary>Rounds planned.</summary>
    public int Rounds { get; init; }
    /// <summary>The workload running or just run.</summary>
    public string? Workload { get; init; }
    /// <summary>The allocator running or just run.</summary>
    public string? Allocator { get; init; }
    /// <summary>The run that just ended (null when a run is starting).</summary>
    public RunSample? LastRun { get; init; }
    /// <summary>Time since the benchmark started.</summary>
    public TimeSpan Elapsed { get; init; }
    /// <summary>CompletedRuns / TotalRuns, 0..1.</summary>
    public double Fraction => TotalRuns == 0 ? 0 : (double)CompletedRuns / TotalRuns;
}
