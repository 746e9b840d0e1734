namespace Konfiscator.Native.Tests.Support;

/// <summary>Paths inside the repository, found from the test assembly's location so that the
/// suite runs from any clone (the root is the nearest ancestor holding build.sh).</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    /// <summary>The artifact under test, where build.sh puts it.</summary>
    public static string Library => Path.Combine(Root, "artifacts", "lib", "libkonfiscator.so");

    /// <summary>The C programs (and the Python workload) the preloaded tests build and run.</summary>
    public static string NativeSource(string fileName) => Path.Combine(Root, "tests", "native", fileName);

    /// <summary>The library's path, or a failure that says how to build it.</summary>
    public static string RequireLibrary()
    {
        if (!File.Exists(Library))
            Assert.Fail($"{Library} does not exist: build it first with `./build.sh --lib-only` (or ./build.sh).");
        return Library;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "build.sh")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"No build.sh above {AppContext.BaseDirectory}: the tests must run inside the repository.");
    }
}
