using System.Collections.Concurrent;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests.Support;

/// <summary>
/// The trial's C programs (tests/native/NAME.c), each compiled with gcc the first time a test
/// asks for it, into a temporary directory removed when the test process exits. A compile error
/// fails the test that needed the program, with gcc's message.
/// </summary>
internal static class TrialPrograms
{
    private static readonly Lazy<string> s_directory = new(() =>
    {
        string directory = Path.Combine(Path.GetTempPath(), $"konfiscator-hardening-programs-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(directory, recursive: true); }
            catch (IOException) { }
        };
        return directory;
    });

    private static readonly ConcurrentDictionary<string, Lazy<string>> s_built = new();

    /// <summary>The path of tests/native/<paramref name="name"/>.c compiled (with -pthread and
    /// -ldl, warnings as errors, plus <paramref name="extraFlags"/>).</summary>
    public static string Get(string name, params string[] extraFlags) =>
        s_built.GetOrAdd(name + " " + string.Join(' ', extraFlags), _ => new Lazy<string>(() => Build(name, extraFlags))).Value;

    private static string Build(string name, string[] extraFlags)
    {
        string gcc = Tools.Require("gcc");
        string output = Path.Combine(s_directory.Value, extraFlags.Length == 0 ? name : $"{name}-{s_built.Count}");
        var arguments = new List<string> { "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread" };
        arguments.AddRange(extraFlags);
        arguments.AddRange([RepoPaths.NativeSource(name + ".c"), "-ldl", "-o", output]);
        var result = ChildProcess.Run(gcc, arguments);
        if (result.ExitCode != 0)
            Assert.Fail($"compiling tests/native/{name}.c failed\n{result.Describe()}");
        return output;
    }
}
