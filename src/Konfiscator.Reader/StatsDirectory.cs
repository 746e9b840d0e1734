using System.Globalization;
using System.Text;
using Konfiscator.Reader.Interop;
using Konfiscator.Stats;

namespace Konfiscator.Reader;

/// <summary>The per-user directory where processes publish their segments.</summary>
public static class StatsDirectory
{
    public const string DirectoryVariable = StatsSchema.DirectoryVariable;
    public const string PublishVariable = StatsSchema.PublishVariable;

    public static uint EffectiveUid => Libc.GetEuid();

    /// <summary>The directory a command was given (made absolute), or the default one.</summary>
    public static string Resolve(string? given) =>
        string.IsNullOrEmpty(given) ? DefaultPath() : Path.GetFullPath(given);

    /// <summary>The directory the allocator publishes to: $KONFISCATOR_STATS_DIR if set and not
    /// empty, else /dev/shm/konfiscator-&lt;uid&gt;.</summary>
    public static string DefaultPath(IDictionary<string, string?>? environment = null)
    {
        string? custom = environment is null
            ? Environment.GetEnvironmentVariable(DirectoryVariable)
            : environment.TryGetValue(DirectoryVariable, out var v) ? v : null;
        return string.IsNullOrEmpty(custom)
            ? string.Create(CultureInfo.InvariantCulture, $"{StatsSchema.DefaultDirectoryPrefix}{EffectiveUid}")
            : custom;
    }

    /// <summary>Creates the directory (mode 0700) if it does not exist and checks that it is one this
    /// user can trust (<see cref="OpenTrusted"/>). Returns an error message, or null when it is fine.</summary>
    public static string? EnsureTrusted(string path)
    {
        try
        {
            if (Libc.LStat(path, out _) == Libc.ENOENT)
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot create the stats directory {path}: {e.Message}";
        }
        int fd = OpenTrusted(path, out string? problem);
        if (fd >= 0) Libc.Close(fd);
        return problem;
    }

    /// <summary>Opens the directory the way the library does and checks the opened directory (not
    /// the name, which could be swapped between a check and a use): not a symbolic link
    /// (O_NOFOLLOW), a directory, owned by this process's effective user, no access at all for group
    /// or others (mode 0700). Anything else would let another user read, delete or forge segments.
    /// Returns the descriptor (the caller closes it), or -1 with <paramref name="problem"/> set.</summary>
    public static int OpenTrusted(string path, out string? problem)
    {
        problem = null;
        int fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            // O_DIRECTORY|O_NOFOLLOW says ENOTDIR for a link as well as for a file.
            if (errno == Libc.ENOTDIR && Libc.LStat(path, out var link) == 0 && link.IsSymlink)
                problem = $"the stats directory {path} is a symbolic link; refusing to use it";
            else
                problem = $"cannot open the stats directory {path}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}";
            return -1;
        }
        int err = Libc.StatFd(fd, out var st);
        if (err != 0)
            problem = $"cannot use the stats directory {path}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(err)}";
        else if (st.Uid != EffectiveUid)
            problem = $"the stats directory {path} belongs to uid {st.Uid}, not to this user ({EffectiveUid}); refusing to use it";
        else if ((st.Mode & 0x3F) != 0)
            problem = $"the stats directory {path} is open to other users (mode {Convert.ToString(st.Mode & 0x1FF, 8).PadLeft(4, '0')}); it must be 0700";
        if (problem is null) return fd;
        Libc.Close(fd);
        return -1;
    }

    /// <summary>Lists the segment files of a directory (by name; nothing is opened).</summary>
    public static List<string> ListSegmentNames(string path)
    {
        var names = new List<string>();
        foreach (string entry in Directory.EnumerateFileSystemEntries(path))
        {
            string name = Path.GetFileName(entry);
            if (SegmentFileName.TryParse(name, out _, out _)) names.Add(name);
        }
        return names;
    }
}

/// <summary>The exporter's claim on a directory: <c>exporter.pid</c> holding "&lt;pid&gt; &lt;starttime&gt;\n".
/// While its process runs, the allocator leaves files of ended processes for the exporter to fold
/// in and remove. Only one collector may hold a directory at a time.</summary>
public sealed class ExporterClaim : IDisposable
{
    private readonly string _file;
    private readonly string _content;
    private bool _released;

    private ExporterClaim(string file, string content)
    {
        _file = file;
        _content = content;
    }

    public string Path => _file;

    /// <summary>Claims <paramref name="directory"/> for this process. Fails (null, with
    /// <paramref name="holder"/> set) when another live process holds it; a stale claim is replaced.</summary>
    public static ExporterClaim? TryClaim(string directory, out int holder, IProcessProbe? probe = null)
    {
        probe ??= ProcFs.Instance;
        holder = 0;
        string file = System.IO.Path.Combine(directory, SegmentFileName.ExporterPidFile);
        if (ReadClaim(file) is { } existing && existing.Pid != Environment.ProcessId && probe.IsRunning(existing.Pid, existing.StartTime))
        {
            holder = existing.Pid;
            return null;
        }
        string content = string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {ProcFs.SelfStartTime()}\n");
        // Write a private temporary file and rename it over the name: atomic, and a symlink
        // planted at exporter.pid is replaced, never written through.
        string temp = System.IO.Path.Combine(directory, $".{SegmentFileName.ExporterPidFile}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            stream.Write(Encoding.ASCII.GetBytes(content));
        }
        File.Move(temp, file, overwrite: true);
        // Two collectors starting at once: the last rename wins, and the loser sees it.
        if (ReadClaim(file) is { } now && now.Pid != Environment.ProcessId)
        {
            holder = now.Pid;
            return null;
        }
        return new ExporterClaim(file, content);
    }

    /// <summary>Reads a claim file; null if absent or malformed.</summary>
    public static (int Pid, ulong StartTime)? ReadClaim(string file)
    {
        try
        {
            if (Libc.LStat(file, out var st) != 0 || !st.IsRegular) return null;
            string[] parts = File.ReadAllText(file).Trim().Split(' ');
            if (parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong start))
                return (pid, start);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>Removes the claim if it is still ours.</summary>
    public void Dispose()
    {
        if (_released) return;
        _released = true;
        try
        {
            if (File.Exists(_file) && File.ReadAllText(_file) == _content) File.Delete(_file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
