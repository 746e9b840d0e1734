using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests.Support;

/// <summary>Runs programs under the library with the stats settings a test chooses (Preload.Run
/// picks its own stats directory, these cases are about that directory).</summary>
internal static class Preloaded
{
    public static ChildResult Run(string program, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string?> settings)
    {
        var environment = new Dictionary<string, string?>(settings) { ["LD_PRELOAD"] = RepoPaths.RequireLibrary() };
        return ChildProcess.Run(program, arguments, environment: environment);
    }

    /// <summary>The same program without the library, for comparing outputs.</summary>
    public static ChildResult RunWithout(string program, IReadOnlyList<string> arguments) =>
        ChildProcess.Run(program, arguments);

    /// <summary>The lines the library wrote to stderr (they start with "konfiscator: ").</summary>
    public static string[] LibraryLines(ChildResult result) =>
        result.Stderr.Split('\n').Where(l => l.StartsWith("konfiscator: ", StringComparison.Ordinal)).ToArray();

    /// <summary>Segment files (*.kstats) in a directory; none when it does not exist.</summary>
    public static string[] Segments(string directory) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory, "*.kstats").Select(f => Path.GetFileName(f)).ToArray() : [];


    /// <summary>chmod with an octal mode written as text, e.g. "0777".</summary>
    public static void SetMode(string path, string octal) => File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32(octal, 8));
}
