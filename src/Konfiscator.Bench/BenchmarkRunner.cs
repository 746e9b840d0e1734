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
        // The steps are BenchmarkRun's methods; its constructor checks the options before anything runs.
        return await new BenchmarkRun(options, progress).ExecuteAsync(cancellationToken).ConfigureAwait(false);
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

    internal static IReadOnlyList<string> SelectAllocators(IReadOnlyList<string>? names, bool includeNoStats,
        IReadOnlyList<NamedLibrary>? libraries = null)
    {
        var chosen = new HashSet<string>(StringComparer.Ordinal) { AllocatorCatalog.Glibc };
        foreach (string name in names is null || names.Count == 0 ? AllocatorCatalog.Defaults : names)
            chosen.Add(AllocatorCatalog.Canonical(name) ?? throw new ArgumentException(
                $"unknown allocator '{name}'; known: {string.Join(", ", AllocatorCatalog.Names)}", nameof(names)));
        if (includeNoStats) chosen.Add(AllocatorCatalog.KonfiscatorNoStats);
        var selected = AllocatorCatalog.Names.Where(chosen.Contains).ToList();
        var named = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var library in libraries ?? [])
        {
            if (CheckLibraryName(library.Name) is string problem) throw new ArgumentException(problem, nameof(libraries));
            if (!named.Add(library.Name))
                throw new ArgumentException($"two libraries are named '{library.Name}'", nameof(libraries));
            selected.Add(library.Name);
        }
        return selected;
    }

    /// <summary>Why <paramref name="name"/> cannot name a library of <see cref="BenchOptions.Libraries"/>,
    /// or null when it can: 1 to 24 letters, digits, '.', '_' or '-', starting with a letter or digit
    /// (it becomes a column of the tables and a key of the JSON), and not an allocator the bench
    /// knows already.</summary>
    public static string? CheckLibraryName(string name)
    {
        if (name.Length is 0 or > 24 || !char.IsAsciiLetterOrDigit(name[0])
            || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            return $"'{name}' cannot name a library: use 1 to 24 letters, digits, '.', '_' or '-', starting with a letter or digit";
        if (AllocatorCatalog.Canonical(name) is string known)
            return $"'{name}' is the name of an allocator the bench knows ({known}); give the library another name";
        return null;
    }

    internal static bool Disturbed(RunSample s, double max) => s.Succeeded && s.OtherCpuLoad is double load && load > max;

    internal static string Describe(RunSample s) => s.Succeeded
        ? string.Create(CultureInfo.InvariantCulture,
            $"{s.Workload} under {s.Allocator}: {s.WallSeconds * 1000:0} ms, {s.PeakRssBytes / 1048576.0:0.0} MiB")
        : $"{s.Workload} under {s.Allocator}: FAILED: {s.Error}";

    internal static async Task<(string? Path, string? Version)> FindPythonAsync(string? configured, CancellationToken ct)
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

    internal static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    internal static string CpuModel()
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

    internal static string KernelRelease()
    {
        try { return File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); }
        catch (IOException) { return Environment.OSVersion.VersionString; }
        catch (UnauthorizedAccessException) { return Environment.OSVersion.VersionString; }
    }
}
