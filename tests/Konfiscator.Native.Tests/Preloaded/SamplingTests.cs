using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>Real programs with allocation sampling far denser than the default (a sample every
/// 1 KiB on average instead of 512 KiB), so that the unwinder, the recursion guard (the unwinder
/// allocates), fork and thread exit are exercised on every few calls: the output must be what
/// glibc's runs print, the stress program's heap check must pass, and every process must have
/// sampled (its KONFISCATOR_LEAKS report says so) rather than quietly run with sampling off.</summary>
public sealed class SamplingTests
{
    private static Dictionary<string, string?> Dense(string leaks, IReadOnlyDictionary<string, string?>? more = null)
    {
        var env = new Dictionary<string, string?> { ["KONFISCATOR_SAMPLE_BYTES"] = "1024", ["KONFISCATOR_LEAKS"] = leaks };
        if (more is not null) foreach (var (k, v) in more) env[k] = v;
        return env;
    }

    /// <summary>Every process appended a report, and none said sampling was off.</summary>
    private static void AssertSampled(string leaks)
    {
        Assert.True(File.Exists(leaks), "no process wrote a leak report");
        string text = File.ReadAllText(leaks);
        Assert.Contains("konfiscator: leaks: ", text);
        Assert.DoesNotContain("sampling is off", text);
    }

    [Fact]
    public void Python_WithDenseSampling_PrintsTheSameAsWithoutTheLibrary()
    {
        string python = Tools.Require("python3");
        using var dir = new TempDir();
        string script = RepoPaths.NativeSource("workload.py");
        var environment = new Dictionary<string, string?> { ["PYTHONHASHSEED"] = "0", ["PYTHONDONTWRITEBYTECODE"] = "1" };

        var baseline = ChildProcess.Run(python, [script], environment: environment).AssertSucceeded();
        var run = Preload.Run(python, [script], environment: Dense(dir.File("leaks"), environment));

        run.Result.AssertSucceeded();
        Assert.Equal(baseline.StdoutText, run.Result.StdoutText);
        AssertSampled(dir.File("leaks"));
    }

    [Fact]
    public void Gcc_WithDenseSampling_EmitsTheSameAssembly()
    {
        string gcc = Tools.Require("gcc");
        using var dir = new TempDir();
        string source = RepoPaths.NativeSource("stress.c");

        var compile = Preload.Run(gcc, ["-O2", "-S", "-o", dir.File("preloaded.s"), source], environment: Dense(dir.File("leaks")));
        compile.Result.AssertSucceeded();
        ChildProcess.Run(gcc, ["-O2", "-S", "-o", dir.File("baseline.s"), source]).AssertSucceeded();

        Assert.Equal(File.ReadAllText(dir.File("baseline.s")), File.ReadAllText(dir.File("preloaded.s")));
        compile.AssertRan("cc1");
        AssertSampled(dir.File("leaks"));
    }

    [Fact]
    public void Git_WithDenseSampling_ProducesTheSameTranscript()
    {
        string git = Tools.Require("git");
        using var dir = new TempDir();
        string leaks = dir.File("leaks");

        string baseline = GitTests.Transcript(dir, "baseline", (arguments, repo, env) => ChildProcess.Run(git, arguments, repo, env));
        string sampled = GitTests.Transcript(dir, "sampled", (arguments, repo, env) =>
            Preload.Run(git, arguments, repo, Dense(leaks, env)).Result);

        Assert.Equal(baseline, sampled);
        AssertSampled(leaks);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Stress_WithDenseSampling_ForksThreadExitsAndCrossThreadFrees_EndsWithASoundHeap(int seed)
    {
        using var dir = new TempDir();
        var run = Preload.Run(NativePrograms.Instance.Stress, [seed.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            environment: Dense(dir.File("leaks")));

        run.Result.AssertSucceeded();
        Assert.StartsWith("stress: ok ", run.Result.StdoutText);
        AssertSampled(dir.File("leaks"));
    }

    /// <summary>A sampled block's free removes its sample on every path: the fast paths must
    /// not take a sampled block (its header's check says it was sampled), and the paths they
    /// hand it to remove the sample. Every block of the program is freed, so nothing sampled
    /// may be live at exit.</summary>
    [Fact]
    public void EverySampledBlock_FreedOnWhicheverPath_LeavesNoSampleLive()
    {
        using var dir = new TempDir();
        var run = Preload.Run(NativePrograms.Instance.SampledFrees, [], environment: Dense(dir.File("leaks")));

        run.Result.AssertSucceeded();
        AssertSampled(dir.File("leaks"));
        Assert.Contains("konfiscator: leaks: no sampled block is live at exit", File.ReadAllText(dir.File("leaks")));
    }

    /// <summary>Every block sampled, 600 000 of them at distinct headers, in a few processes
    /// (each with a key of its own for the headers' checks): every free found its block
    /// sampled and removed the sample. tests/native/sampled_frees.c says what this caught.</summary>
    [Fact]
    public void EveryBlockSampled_AtManyHeaders_LeavesNoSampleLive()
    {
        using var dir = new TempDir();
        for (int process = 0; process < 3; process++)
        {
            string leaks = dir.File($"leaks-{process}");
            var env = new Dictionary<string, string?> { ["KONFISCATOR_SAMPLE_BYTES"] = "1", ["KONFISCATOR_LEAKS"] = leaks };
            var run = Preload.Run(NativePrograms.Instance.SampledFrees, ["headers"], environment: env);

            run.Result.AssertSucceeded();
            AssertSampled(leaks);
            Assert.Contains("konfiscator: leaks: no sampled block is live at exit", File.ReadAllText(leaks));
        }
    }
}
