using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/whichmalloc.c: which object a program's malloc really is.</summary>
public sealed class WhichMallocTests
{
    private static readonly string[] s_functions = ["malloc", "free", "calloc", "realloc", "posix_memalign"];

    [Fact]
    public void UnderThePreload_EveryFunctionResolvesToLibKonfiscator()
    {
        var run = Preload.Run(NativePrograms.Instance.WhichMalloc, []);

        run.Result.AssertSucceeded();
        var resolved = Parse(run.Result.StdoutText);
        Assert.Equal(s_functions.Order(StringComparer.Ordinal), resolved.Keys.Order(StringComparer.Ordinal));
        foreach (string function in s_functions)
            Assert.Equal(Preload.LibraryRealPath, Path.GetFullPath(resolved[function]));
    }

    [Fact]
    public void WithoutThePreload_TheFunctionsAreLibc()
    {
        // The check must be able to tell: without the library the answer is glibc.
        var result = ChildProcess.Run(NativePrograms.Instance.WhichMalloc, []).AssertSucceeded();

        var resolved = Parse(result.StdoutText);
        foreach (string function in s_functions)
            Assert.Matches(@"/libc\.so\.6$", resolved[function]);
    }

    private static Dictionary<string, string> Parse(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', 2))
            .ToDictionary(parts => parts[0], parts => parts.Length > 1 ? parts[1] : "");
}
