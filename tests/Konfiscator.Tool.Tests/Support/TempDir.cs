namespace Konfiscator.Tool.Tests.Support;

/// <summary>A private (0700) temporary directory, removed at the end of a test.</summary>
internal sealed class TempDir : IDisposable
{
    /// <param name="inMemory">Under /dev/shm (tmpfs, where the default stats directory lives) when
    /// it exists: for tests that make and remove thousands of files.</param>
    public TempDir(string prefix = "kt", bool inMemory = false)
    {
        string parent = inMemory && Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(parent, $"{prefix}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string[] Names() => Directory.EnumerateFileSystemEntries(Path).Select(System.IO.Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray()!;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
