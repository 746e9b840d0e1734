namespace Konfiscator.Native.Tests.Support;

/// <summary>Finds the programs the tests need on PATH. A missing tool fails the test with a clear
/// message: the suite never skips silently.</summary>
internal static class Tools
{
    public static string Require(string name)
    {
        string? path = Find(name);
        if (path is null)
            Assert.Fail($"`{name}` was not found on PATH ({Environment.GetEnvironmentVariable("PATH")}); this test needs it. " +
                        ".ci/run installs the test dependencies with apt-get.");
        return path!;
    }

    public static string? Find(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return candidate;
        }
        return null;
    }
}
