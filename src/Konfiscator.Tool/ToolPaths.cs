namespace Konfiscator.Tool;

/// <summary>Where the tool finds the library and the demo program: next to itself, as build.sh
/// and the release tarball lay them out (bin/konfiscator, bin/konf-driver,
/// lib/libkonfiscator.so), or all in the tool's own directory (the .NET tool package), unless
/// KONFISCATOR_LIB names the library.</summary>
internal static class ToolPaths
{
    public const string LibraryVariable = "KONFISCATOR_LIB";

    public static string ToolDirectory => AppContext.BaseDirectory;

    public static string Library()
    {
        string? custom = Environment.GetEnvironmentVariable(LibraryVariable);
        if (!string.IsNullOrEmpty(custom)) return Path.GetFullPath(custom);
        string beside = Path.GetFullPath(Path.Combine(ToolDirectory, "..", "lib", "libkonfiscator.so"));
        string inside = Path.Combine(ToolDirectory, "libkonfiscator.so");
        return !File.Exists(beside) && File.Exists(inside) ? inside : beside;
    }

    /// <summary>The demo program (the seed's driver) next to the tool. A package manager that
    /// does not keep file modes (NuGet) leaves it without its execute bit: given back here.</summary>
    public static string Driver()
    {
        string driver = Path.Combine(ToolDirectory, "konf-driver");
        try
        {
            var mode = File.GetUnixFileMode(driver);
            if ((mode & UnixFileMode.UserExecute) == 0)
                File.SetUnixFileMode(driver, mode | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Missing or not ours: the caller reports it.
        }
        return driver;
    }
}
