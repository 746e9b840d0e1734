using System.Collections.Concurrent;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests.Support;

/// <summary>The C programs of the stats-segment and settings cases (tests/native), each compiled
/// with gcc the first time a test asks for it, into a directory removed when the test process
/// exits. The directory is 0755 so that another user can run a program from it (the setuid case).</summary>
internal static class StatsCasePrograms
{
    private static readonly Lazy<string> s_directory = new(CreateDirectory);
    private static readonly ConcurrentDictionary<string, Lazy<string>> s_built = new();

    /// <summary>Counts and checks blocks while the stats filesystem fills up (fullstats.c).</summary>
    public static string FullStats => Build("fullstats", "-pthread");

    /// <summary>Prints whether a freed small block went to the thread cache (switches.c).</summary>
    public static string Switches => Build("switches", "-ldl");

    /// <summary>Prints how many directory entries the library's start looked at (startwork.c).</summary>
    public static string StartWork => Build("startwork", "-ldl");

    /// <summary>Loads the library with dlopen and reports whether the process is secure (setuidprobe.c).</summary>
    public static string SetuidProbe => Build("setuidprobe", "-ldl");

    private static string Build(string name, string libraries) => s_built.GetOrAdd(name, n => new Lazy<string>(() =>
    {
        string output = Path.Combine(s_directory.Value, n);
        var result = ChildProcess.Run(Tools.Require("gcc"),
            ["-O2", "-Wall", "-Wextra", "-Werror", RepoPaths.NativeSource($"{n}.c"), "-o", output, .. libraries.Split(' ')]);
        if (result.ExitCode != 0)
            Assert.Fail($"compiling {n}.c failed\n{result.Describe()}");
        return output;
    })).Value;

    private static string CreateDirectory()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"konfiscator-hardening-programs-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101); // 0755
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(directory, recursive: true); }
            catch (IOException) { }
        };
        return directory;
    }
}
