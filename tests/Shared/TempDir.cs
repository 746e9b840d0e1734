namespace Konfiscator.Tests.Shared;

/// <summary>A private (0700) temporary directory under the system's temporary directory (never
/// inside the repository: the git test creates repositories in here and must not find the
/// project's own), removed at the end of a test. Shared by every test project.</summary>
internal sealed class TempDir : IDisposable
{
    /// <param name="inMemory">Under /dev/shm (tmpfs, where the default stats directory lives) when
    /// it exists: for tests that make and remove thousands of files.</param>
    public TempDir(string prefix = "konfiscator-tests", bool inMemory = false)
    {
        string parent = inMemory && Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(parent, $"{prefix}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A subdirectory, mode 0700 like the directory itself (a stats directory must be).</summary>
    public string Subdirectory(string name)
    {
        string path = File(name);
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>The names of the entries in the directory, sorted.</summary>
    public string[] Names() =>
        Directory.EnumerateFileSystemEntries(Path).Select(System.IO.Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray()!;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temporary directory is not worth failing a test for.
        }
    }
}
