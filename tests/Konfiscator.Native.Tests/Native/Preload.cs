using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Native;

/// <summary>One process the probe library saw: its executable and, per malloc API symbol, the
/// object the symbol resolved to in that process.</summary>
internal sealed record ProbedProcess(int Pid, string Executable, IReadOnlyDictionary<string, string> Symbols, string Line);

/// <summary>A run under LD_PRELOAD, with the processes that proved they used the library.</summary>
internal sealed record PreloadedRun(ChildResult Result, IReadOnlyList<ProbedProcess> Processes)
{
    /// <summary>Fails unless some process of the run was <paramref name="executableName"/> (the
    /// file name of /proc/PID/exe), e.g. cc1 for a gcc run: the allocator served that very
    /// program, not only a wrapper around it.</summary>
    public void AssertRan(string executableName)
    {
        if (!Processes.Any(p => Path.GetFileName(p.Executable).StartsWith(executableName, StringComparison.Ordinal)))
            Assert.Fail($"no process named {executableName}* ran under the library; processes seen: " +
                        string.Join(", ", Processes.Select(p => p.Executable).Distinct()));
    }
}

/// <summary>
/// Runs programs with <c>LD_PRELOAD=&lt;repo&gt;/artifacts/lib/libkonfiscator.so</c>, and proves for
/// each run that the library was really in use. The probe library (tests/native/probe.c) is
/// preloaded after it; its constructor runs in every process of the tree and records which object
/// each malloc API symbol resolves to. A run passes the proof only if at least one process
/// reported and every report names libkonfiscator.so for every symbol. (A preload that the
/// dynamic linker ignores, e.g. a wrong path, prints a warning and carries on with glibc: that
/// is exactly what this catches.)
/// </summary>
internal static class Preload
{
    private static readonly string[] s_symbols =
    [
        "malloc", "free", "calloc", "realloc", "reallocarray", "memalign",
        "posix_memalign", "aligned_alloc", "valloc", "pvalloc", "malloc_usable_size",
    ];

    public static string LibraryRealPath => Path.GetFullPath(ResolveLinks(RepoPaths.RequireLibrary()));

    /// <summary>Runs <paramref name="program"/> under the library and checks the proof.
    /// Assertions about exit status and output are the caller's.</summary>
    public static PreloadedRun Run(
        string program,
        IReadOnlyList<string> arguments,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        TimeSpan? timeout = null)
    {
        string library = RepoPaths.RequireLibrary();
        var programs = NativePrograms.Instance;
        using var scratch = new TempDir("konfiscator-preload");
        string probeFile = scratch.File("probe.txt");

        var env = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>())
        {
            ["LD_PRELOAD"] = $"{library}:{programs.Probe}",
            ["KONFISCATOR_PROBE_FILE"] = probeFile,
            // Keep the stats segments of short-lived (and aborted) test processes out of the
            // shared default directory.
            ["KONFISCATOR_STATS_DIR"] = scratch.Subdirectory("stats"),
        };
        ChildResult result = ChildProcess.Run(program, arguments, workingDirectory, env, timeout);

        string[] lines = File.Exists(probeFile) ? File.ReadAllLines(probeFile) : [];
        var processes = lines.Where(l => l.Length > 0).Select(Parse).ToList();
        if (processes.Count == 0)
            Assert.Fail($"no process reported through the probe library: the preload did not take effect\n{result.Describe()}");

        string expected = LibraryRealPath;
        var strangers = processes
            .SelectMany(p => s_symbols.Select(symbol => (Process: p, Symbol: symbol,
                Where: p.Symbols.TryGetValue(symbol, out string? where) ? where : "(missing)")))
            .Where(x => x.Where == "?" || x.Where == "(missing)" || Path.GetFullPath(ResolveLinks(x.Where)) != expected)
            .ToList();
        if (strangers.Count > 0)
            Assert.Fail("the malloc API did not resolve to libkonfiscator.so in every process:\n" +
                        string.Join("\n", strangers.Take(20).Select(s => $"  {s.Process.Executable} (pid {s.Process.Pid}): {s.Symbol} -> {s.Where}")) +
                        $"\n{result.Describe()}");
        return new PreloadedRun(result, processes);
    }

    private static ProbedProcess Parse(string line)
    {
        // pid=123 exe=/usr/bin/sort malloc=/path free=/path ...  (paths have no spaces here:
        // the repository's and the system's library directories)
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0])
            .ToDictionary(g => g.Key, g => g.First()[1]);
        int pid = fields.TryGetValue("pid", out string? p) && int.TryParse(p, out int n) ? n : -1;
        string exe = fields.TryGetValue("exe", out string? e) ? e : "?";
        return new ProbedProcess(pid, exe, fields, line);
    }

    private static string ResolveLinks(string path)
    {
        try
        {
            var target = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true);
            return target?.FullName ?? path;
        }
        catch (IOException)
        {
            return path;
        }
    }
}
