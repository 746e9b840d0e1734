using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace Konfiscator.Bench;

/// <summary>The compiled programs of one run.</summary>
/// <param name="Directory">The cache directory that holds them.</param>
/// <param name="Runner">The measuring wrapper (bench/runner.c).</param>
/// <param name="Probe">The preload check (bench/probe.c).</param>
/// <param name="Programs">Source file name (e.g. "small_blocks.c") → executable or script path.</param>
/// <param name="CompilerVersion">The compiler's first line of --version (it went into the cache key).</param>
internal sealed record CompiledSet(string Directory, string Runner, string Probe, IReadOnlyDictionary<string, string> Programs,
                                   string CompilerVersion);

/// <summary>Gets the workload sources (built into this assembly, or from a directory) and compiles
/// them with gcc -O2 into a cache directory keyed by a hash of the sources, the compiler and its flags.</summary>
internal static class WorkloadBuilder
{
    public const string RunnerSource = "runner.c";
    public const string ProbeSource = "probe.c";

    /// <summary>-fno-builtin-*: gcc may otherwise pair up or drop malloc/free calls whose results it
    /// can see through, and the benchmark must make every call it is written to make.</summary>
    public static readonly IReadOnlyList<string> Flags =
    [
        "-O2", "-pthread", "-fno-builtin-malloc", "-fno-builtin-free", "-fno-builtin-calloc", "-fno-builtin-realloc",
    ];

    public static readonly IReadOnlyList<string> Libraries = ["-ldl", "-lm"];

    /// <summary>Every bench/ source: name → text.</summary>
    public static IReadOnlyDictionary<string, string> ReadSources(string? directory)
    {
        var sources = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (directory is not null)
        {
            if (!System.IO.Directory.Exists(directory))
                throw new BenchmarkException($"workload source directory {directory} does not exist");
            foreach (string path in System.IO.Directory.EnumerateFiles(directory))
            {
                string name = Path.GetFileName(path);
                if (name.EndsWith(".c", StringComparison.Ordinal) || name.EndsWith(".h", StringComparison.Ordinal) ||
                    name.EndsWith(".py", StringComparison.Ordinal))
                    sources[name] = File.ReadAllText(path);
            }
        }
        else
        {
            var assembly = typeof(WorkloadBuilder).Assembly;
            foreach (string resource in assembly.GetManifestResourceNames())
            {
                if (!resource.StartsWith("bench/", StringComparison.Ordinal)) continue;
                using Stream stream = assembly.GetManifestResourceStream(resource)!;
                using var reader = new StreamReader(stream, Encoding.UTF8);
                sources[resource["bench/".Length..]] = reader.ReadToEnd();
            }
        }
        foreach (string required in new[] { RunnerSource, ProbeSource, "bench_common.h" })
            if (!sources.ContainsKey(required))
                throw new BenchmarkException($"workload sources incomplete: {required} is missing" +
                    (directory is null ? " from the assembly" : $" from {directory}"));
        return sources;
    }

    public static async Task<CompiledSet> BuildAsync(
        IReadOnlyDictionary<string, string> sources, IEnumerable<string> needed, string compiler, string cacheRoot,
        CancellationToken cancellationToken)
    {
        string compilerVersion = await CompilerVersionAsync(compiler, cancellationToken).ConfigureAwait(false)
            ?? throw new BenchmarkException($"the C compiler '{compiler}' does not run (install gcc, or set CC)");

        string hash;
        using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            void Add(string s) => sha.AppendData(Encoding.UTF8.GetBytes(s + "\0"));
            Add(compiler);
            Add(compilerVersion);
            foreach (string f in Flags.Concat(Libraries)) Add(f);
            foreach (var (name, text) in sources) { Add(name); Add(text); }
            hash = Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
        }
        string dir = Path.Combine(cacheRoot, "build-" + hash);
        CreatePrivateDirectory(dir);

        var programs = new Dictionary<string, string>(StringComparer.Ordinal);
        var jobs = new List<Task>();
        foreach (string source in needed.Append(RunnerSource).Append(ProbeSource).Distinct())
        {
            if (!sources.TryGetValue(source, out string? text))
                throw new BenchmarkException($"workload source {source} is missing");
            if (source.EndsWith(".py", StringComparison.Ordinal))
            {
                string script = Path.Combine(dir, source);
                await WriteAtomicallyAsync(script, text, cancellationToken).ConfigureAwait(false);
                programs[source] = script;
                continue;
            }
            string exe = Path.Combine(dir, Path.GetFileNameWithoutExtension(source));
            programs[source] = exe;
            if (!File.Exists(exe))
                jobs.Add(CompileAsync(compiler, sources, dir, source, exe, cancellationToken));
        }
        await Task.WhenAll(jobs).ConfigureAwait(false);
        return new CompiledSet(dir, programs[RunnerSource], programs[ProbeSource], programs, compilerVersion);
    }

    private static async Task CompileAsync(string compiler, IReadOnlyDictionary<string, string> sources, string dir,
        string source, string exe, CancellationToken cancellationToken)
    {
        // Sources go into a private scratch directory (the headers beside them), the executable is
        // renamed into place only when complete, so concurrent runs never see half a file.
        string scratch = Path.Combine(dir, $"src-{Environment.ProcessId}-{Guid.NewGuid():N}");
        CreatePrivateDirectory(scratch);
        try
        {
            foreach (var (name, text) in sources.Where(s => s.Key.EndsWith(".h", StringComparison.Ordinal) || s.Key == source))
                await File.WriteAllTextAsync(Path.Combine(scratch, name), text, cancellationToken).ConfigureAwait(false);
            string temp = exe + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
            var args = new List<string>(Flags) { "-o", temp, Path.Combine(scratch, source) };
            args.AddRange(Libraries);
            var (code, output) = await ProcessUtil.RunAsync(compiler, args, TimeSpan.FromMinutes(2), cancellationToken)
                .ConfigureAwait(false);
            if (code != 0 || !File.Exists(temp))
            {
                File.Delete(temp);
                throw new BenchmarkException($"{compiler} could not compile bench/{source}:\n{output.Trim()}");
            }
            File.Move(temp, exe, overwrite: true);
        }
        finally
        {
            try { System.IO.Directory.Delete(scratch, recursive: true); }
            catch (IOException) { /* left behind in the cache: harmless */ }
        }
    }

    private static async Task WriteAtomicallyAsync(string path, string text, CancellationToken cancellationToken)
    {
        if (File.Exists(path) && await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false) == text) return;
        string temp = path + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        await File.WriteAllTextAsync(temp, text, cancellationToken).ConfigureAwait(false);
        File.Move(temp, path, overwrite: true);
    }

    public static async Task<string?> CompilerVersionAsync(string compiler, CancellationToken cancellationToken)
    {
        try
        {
            var (code, output) = await ProcessUtil.RunAsync(compiler, ["--version"], TimeSpan.FromSeconds(30), cancellationToken)
                .ConfigureAwait(false);
            return code == 0 ? output.Split('\n')[0].Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    public static void CreatePrivateDirectory(string path)
    {
        System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}

/// <summary>Runs a helper program to completion and returns its exit code and output.</summary>
internal static class ProcessUtil
{
    public static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("LD_PRELOAD");
        using var process = Process.Start(psi) ?? throw new BenchmarkException($"cannot start {file}");
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(timeout);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(timer.Token);
        Task<string> stderr = process.StandardError.ReadToEndAsync(timer.Token);
        try
        {
            await process.WaitForExitAsync(timer.Token).ConfigureAwait(false);
            return (process.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { /* already gone */ }
            cancellationToken.ThrowIfCancellationRequested();
            return (-1, $"{file} did not finish within {timeout.TotalSeconds:0} s");
        }
    }
}
