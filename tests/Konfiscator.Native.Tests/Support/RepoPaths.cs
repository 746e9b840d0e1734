namespace Konfiscator.Native.Tests.Support;

/// <summary>Paths inside the repository (the shared <see cref="Repo"/> finds the root and the
/// artifacts, honouring KONFISCATOR_ARTIFACTS like every test project).</summary>
internal static class RepoPaths
{
    public static string Root => Repo.Root;

    /// <summary>The artifact under test, where build.sh puts it.</summary>
    public static string Library => Repo.Library;

    /// <summary>The C programs (and the Python workload) the preloaded tests build and run.</summary>
    public static string NativeSource(string fileName) => Path.Combine(Root, "tests", "native", fileName);

    /// <summary>The library's path, or a failure that says how to build it.</summary>
    public static string RequireLibrary()
    {
        if (!File.Exists(Library))
            Assert.Fail($"{Library} does not exist: build it first with `./build.sh --lib-only` (or ./build.sh).");
        return Library;
    }
}
