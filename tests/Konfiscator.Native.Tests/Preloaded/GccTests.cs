using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>gcc (driver, cc1, as, collect2/ld: all inherit LD_PRELOAD) compiling under the
/// library must produce the same program and the same assembly as without it.</summary>
public sealed class GccTests
{
    [Fact]
    public void Gcc_CompilesAProgramThatBehavesTheSame_AsWithoutTheLibrary()
    {
        string gcc = Tools.Require("gcc");
        using var dir = new TempDir();
        string source = RepoPaths.NativeSource("driver.c");

        var compile = Preload.Run(gcc, ["-O2", "-Wall", "-o", dir.File("preloaded"), source]);
        compile.Result.AssertSucceeded();
        ChildProcess.Run(gcc, ["-O2", "-Wall", "-o", dir.File("baseline"), source]).AssertSucceeded();

        var built = ChildProcess.Run(dir.File("preloaded"), []).AssertSucceeded();
        var reference = ChildProcess.Run(dir.File("baseline"), []).AssertSucceeded();
        Assert.Equal(reference.StdoutText, built.StdoutText);
        Assert.StartsWith("index 0: value 0\n", built.StdoutText);
        compile.AssertRan("cc1");
        compile.AssertRan("collect2");
    }

    [Fact]
    public void Gcc_EmitsTheSameAssembly_AsWithoutTheLibrary()
    {
        string gcc = Tools.Require("gcc");
        using var dir = new TempDir();
        // The largest of the test programs, optimised: cc1 does real work.
        string source = RepoPaths.NativeSource("stress.c");

        var compile = Preload.Run(gcc, ["-O2", "-S", "-o", dir.File("preloaded.s"), source]);
        compile.Result.AssertSucceeded();
        ChildProcess.Run(gcc, ["-O2", "-S", "-o", dir.File("baseline.s"), source]).AssertSucceeded();

        string baseline = File.ReadAllText(dir.File("baseline.s"));
        Assert.Contains("pthread_create", baseline);
        Assert.Equal(baseline, File.ReadAllText(dir.File("preloaded.s")));
        compile.AssertRan("cc1");
    }
}
