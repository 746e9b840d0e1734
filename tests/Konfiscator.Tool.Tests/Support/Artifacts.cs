using System.Diagnostics;

namespace Konfiscator.Tool.Tests.Support;

/// <summary>What ./build.sh produces, for end-to-end tests with the real allocator:
/// artifacts/bin/konfiscator, artifacts/bin/konf-driver, artifacts/lib/libkonfiscator.so.
/// KONFISCATOR_ARTIFACTS may name another directory with the same bin/ and lib/ layout.</summary>
internal static class Artifacts
{
    public static string RepoRoot => Repo.Root;

    public static string Directory => Repo.Artifacts;

    public static string Library => Repo.Library;
    public static string Tool => Path.Combine(Directory, "bin", "konfiscator");
    public static string Driver => Path.Combine(Directory, "bin", "konf-driver");

    /// <summary>The driver's command label: its file name as /proc/PID/comm keeps it (15 characters).</summary>
    public static string DriverCommand => Path.GetFileName(Driver) is var n && n.Length > 15 ? n[..15] : n;

    public static bool Built => File.Exists(Tool) && File.Exists(Library);

    /// <summary>A library that is harmless to preload, to exercise `run` without the allocator.</summary>
    public static string HarmlessLibrary()
    {
        string[] candidates =
        [
            "/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
            "/lib/aarch64-linux-gnu/libm.so.6", "/usr/lib/aarch64-linux-gnu/libm.so.6", "/lib64/libm.so.6",
        ];
        return candidates.First(File.Exists);
    }

    /// <summary>Compiles one of the C programs in native/ (copied next to the tests) with gcc.</summary>
    public static string CompileC(string source, string outputDirectory, params string[] flags)
    {
        string input = Path.Combine(AppContext.BaseDirectory, "native", source);
        string output = Path.Combine(outputDirectory, Path.GetFileNameWithoutExtension(source));
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("CC") ?? "gcc")
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (string a in flags.Concat(["-Wall", "-Werror", "-o", output, input])) start.ArgumentList.Add(a);
        using var gcc = Process.Start(start)!;
        string errors = gcc.StandardError.ReadToEnd() + gcc.StandardOutput.ReadToEnd();
        gcc.WaitForExit();
        if (gcc.ExitCode != 0) throw new Xunit.Sdk.XunitException($"gcc failed on {source}:\n{errors}");
        return output;
    }

    /// <summary>Runs <paramref name="command"/> to its end with the library preloaded, publishing into
    /// <paramref name="statsDir"/> (plus any <paramref name="settings"/>), and asserts it exited 0.
    /// Its output is read and dropped, so that a full pipe never stalls it.</summary>
    public static void RunPreloadedToEnd(string[] command, string statsDir, IReadOnlyDictionary<string, string>? settings = null)
    {
        var start = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in command.Skip(1)) start.ArgumentList.Add(argument);
        start.Environment["LD_PRELOAD"] = Library;
        start.Environment["KONFISCATOR_STATS_DIR"] = statsDir;
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        stdout.Wait();
        string shown = string.Join(' ', command);
        if (!process.WaitForExit(30_000)) throw new Xunit.Sdk.XunitException($"{shown} did not end");
        if (process.ExitCode != 0) throw new Xunit.Sdk.XunitException($"{shown} exited with {process.ExitCode}: {stderr}");
    }

    /// <summary>python3 from the system (not a version manager's shim, which would run a shell
    /// script and a dozen helpers under the allocator first).</summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/// <summary>A test that needs ./build.sh's artifacts (test.sh builds them first). It is never
/// skipped: without the artifacts it fails, saying what to build, so a missing piece cannot
/// pass unnoticed.</summary>
public sealed class ArtifactsFactAttribute : FactAttribute
{
}

/// <summary>Called at the start of every end-to-end test.</summary>
internal static class ArtifactsCheck
{
    public static void RequireBuilt()
    {
        if (!Artifacts.Built)
            throw new Xunit.Sdk.XunitException($"needs {Artifacts.Tool} and {Artifacts.Library}: run ./build.sh (or set KONFISCATOR_ARTIFACTS)");
    }
}
