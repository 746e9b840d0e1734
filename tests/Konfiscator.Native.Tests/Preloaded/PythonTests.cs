using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>CPython (tests/native/workload.py: json, re, sqlite3 in memory, threads) must print
/// exactly what it prints on glibc's malloc.</summary>
public sealed class PythonTests
{
    [Fact]
    public void Python_JsonReSqliteAndThreads_PrintsTheSameAsWithoutTheLibrary()
    {
        string python = Tools.Require("python3");
        string script = RepoPaths.NativeSource("workload.py");
        var environment = new Dictionary<string, string?>
        {
            ["PYTHONHASHSEED"] = "0",
            ["PYTHONDONTWRITEBYTECODE"] = "1",
        };

        var baseline = ChildProcess.Run(python, [script], environment: environment).AssertSucceeded();
        var run = Preload.Run(python, [script], environment: environment);

        run.Result.AssertSucceeded();
        Assert.Contains("threads [", baseline.StdoutText);
        Assert.Equal(baseline.StdoutText, run.Result.StdoutText);
        run.AssertRan("python3");
    }
}
