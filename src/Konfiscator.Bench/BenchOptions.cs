namespace Konfiscator.Bench;

/// <summary>What to run. Every property has a sensible default, so <c>new BenchOptions()</c>
/// is the full normal-mode benchmark and <c>new BenchOptions { Quick = true }</c> the quick one.</summary>
public sealed record BenchOptions
{
    /// <summary>Quick mode: every workload about 10 times smaller, one round. A smoke test of
    /// the harness, not a measurement.</summary>
    public bool Quick { get; init; }

    /// <summary>Rounds; each round runs every workload under every allocator once, in a
    /// shuffled order. Default: 5, or 1 in quick mode.</summary>
    public int? Rounds { get; init; }

    /// <summary>Seeds the order of the runs within the rounds (the workloads' own random
    /// numbers are fixed, so every allocator gets exactly the same requests).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Workload ids to run (see <see cref="BenchmarkRunner.Workloads"/>); null or empty: all.</summary>
    public IReadOnlyList<string>? Workloads { get; init; }

    /// <summary>Allocators to compare (see <see cref="BenchmarkRunner.AllocatorNames"/>); null or
    /// empty: glibc, konfiscator, jemalloc, mimalloc, tcmalloc. glibc, the baseline, is always added.</summary>
    public IReadOnlyList<string>? Allocators { get; init; }

    /// <summary>Also run konfiscator with <c>KONFISCATOR_STATS=0</c> ("konfiscator-nostats"), so
    /// the cost of publishing statistics shows as a ratio.</summary>
    public bool IncludeNoStats { get; init; }

    /// <summary>Path of libkonfiscator.so. Default: <c>$KONFISCATOR_LIB</c>, else
    /// <c>../lib/libkonfiscator.so</c> next to the running program (the layout build.sh makes),
    /// else <c>artifacts/lib/libkonfiscator.so</c> in a directory above the program or the
    /// current directory.</summary>
    public string? KonfiscatorLibrary { get; init; }

    /// <summary>Explicit library paths by allocator name (e.g. "jemalloc" → a path), instead of
    /// looking them up with ldconfig and in the usual library directories. A path that does not
    /// exist makes that allocator "not installed".</summary>
    public IReadOnlyDictionary<string, string>? AllocatorLibraries { get; init; }

    /// <summary>More libraries to compare, each preloaded under a name of its own (usually other
    /// builds of libkonfiscator.so: this one against the last commit's, or with a change taken
    /// out), after the allocators above and in this order. Each runs with konfiscator's settings
    /// (statistics published into the run's own directory) and counts as the project's own: a
    /// failed run of one makes the run fail. Names are checked by
    /// <see cref="BenchmarkRunner.CheckLibraryName"/>.</summary>
    public IReadOnlyList<NamedLibrary>? Libraries { get; init; }

    /// <summary>Read the workload sources from this directory (a checkout's bench/) instead of
    /// the copies built into this assembly.</summary>
    public string? SourceDirectory { get; init; }

    /// <summary>Where compiled workloads are cached (one subdirectory per source hash) and where
    /// konfiscator's stats segments go during the run. Default: a per-user directory under the
    /// system's temporary directory.</summary>
    public string? WorkDirectory { get; init; }

    /// <summary>The C compiler. Default: <c>$CC</c>, else gcc.</summary>
    public string? CCompiler { get; init; }

    /// <summary>The python3 executable for the real-program workload. Default:
    /// <c>/usr/bin/python3</c>, else the interpreter that <c>python3</c> on the PATH runs
    /// (resolved through wrappers such as pyenv's shims, so that only python is preloaded).</summary>
    public string? Python { get; init; }

    /// <summary>Size multiplier applied on top of the mode (1 in normal mode, 0.1 in quick mode).</summary>
    public double ScaleFactor { get; init; } = 1.0;

    /// <summary>Longest a single run may take before it is killed and counted as failed (later
    /// rounds then skip that workload under that allocator). Default: 120 s, or 30 s in quick mode.</summary>
    public TimeSpan? RunTimeout { get; init; }

    /// <summary>Run each workload once under glibc, unmeasured, before the rounds (default true).</summary>
    public bool Warmup { get; init; } = true;

    /// <summary>A run during which other processes kept more than this share of all CPUs busy
    /// (see <see cref="RunSample.OtherCpuLoad"/>) is disturbed: after all the rounds it is run again,
    /// in up to <see cref="DisturbedRetries"/> make-up passes, and the least disturbed attempt counts
    /// (a failed attempt always counts). Default 0.25 (on 2 cores: half a core taken by someone else).</summary>
    public double MaxOtherCpuLoad { get; init; } = 0.25;

    /// <summary>How many make-up passes repeat disturbed runs. Default: 2, or 0 in quick mode.</summary>
    public int? DisturbedRetries { get; init; }

    internal int EffectiveRetries => Math.Max(0, DisturbedRetries ?? (Quick ? 0 : 2));

    internal int EffectiveRounds => Rounds ?? (Quick ? 1 : 5);

    internal double EffectiveScale => (Quick ? 0.1 : 1.0) * ScaleFactor;

    internal TimeSpan EffectiveRunTimeout => RunTimeout ?? TimeSpan.FromSeconds(Quick ? 30 : 120);
}

/// <summary>A library that <c>konfiscator bench</c> runs under a name the user chose.</summary>
/// <param name="Name">The name its column gets (see <see cref="BenchmarkRunner.CheckLibraryName"/>).</param>
/// <param name="Path">The shared object preloaded for its runs.</param>
public sealed record NamedLibrary(string Name, string Path)
{
    /// <summary>"NAME=PATH" as written on a command line, the path made absolute; null when there
    /// is no '=' or either side of it is empty. (The name is checked later, by
    /// <see cref="BenchmarkRunner.CheckLibraryName"/>.)</summary>
    public static NamedLibrary? Parse(string token)
    {
        int eq = token.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == token.Length - 1) return null;
        return new NamedLibrary(token[..eq], System.IO.Path.GetFullPath(token[(eq + 1)..]));
    }
}
