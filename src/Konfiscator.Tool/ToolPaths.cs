namespace Konfiscator.Tool;

/// <summary>Where the tool finds the library and the seed's driver: next to itself, as build.sh
/// lays them out (artifacts/bin/konfiscator, artifacts/bin/konfiscator-driver,
/// artifacts/lib/libkonfiscator.so), unless KONFISCATOR_LIB names the library.</summary>
internal static class ToolPaths
{
    public const string LibraryVariable = "KONFISCATOR_LIB";

    public static string ToolDirectory => AppContext.BaseDirectory;

    public static string Library()
    {
        string? custom = Environment.GetEnvironmentVariable(LibraryVariable);
        return !string.IsNullOrEmpty(custom)
            ? Path.GetFullPath(custom)
            : Path.GetFullPath(Path.Combine(ToolDirectory, "..", "lib", "libkonfiscator.so"));
    }

    /// <summary>The seed's driver program next to the tool (konf-driver).</summary>
    public static string Driver() => Path.Combine(ToolDirectory, "konf-driver");
}
