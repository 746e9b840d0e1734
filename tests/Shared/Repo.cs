namespace Konfiscator.Tests.Shared;

/// <summary>The repository and what ./build.sh puts in it, for every test project: the root is the
/// nearest ancestor of the test assembly holding build.sh and src/; the artifacts are
/// <c>artifacts/</c> there, or the directory KONFISCATOR_ARTIFACTS names (same bin/ and lib/ layout).</summary>
internal static class Repo
{
    public const string ArtifactsVariable = "KONFISCATOR_ARTIFACTS";

    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    public static string Artifacts =>
        Environment.GetEnvironmentVariable(ArtifactsVariable) is { Length: > 0 } custom ? custom : Path.Combine(Root, "artifacts");

    public static string Library => Path.Combine(Artifacts, "lib", "libkonfiscator.so");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "build.sh")) && Directory.Exists(Path.Combine(dir.FullName, "src")))
                return dir.FullName;
        throw new InvalidOperationException($"no build.sh above {AppContext.BaseDirectory}: the tests must run inside the repository");
    }
}
