namespace Konfiscator.Reader;

/// <summary>A segment found in the directory, with what is known about its process.
/// <paramref name="ProcessRunning"/>: a process with its pid and start time runs (this image may
/// still be over: replaced by exec).</summary>
public sealed record ScannedSegment(ProcessStats Stats, FileIdentity Identity, bool Over, bool ProcessRunning)
{
    public bool Live => !Over;
}

/// <summary>A file that is not a readable segment.</summary>
public sealed record BadFile(FileIdentity Identity, ReadError Error, string Detail);

/// <summary>One pass over a stats directory: every segment read once and classified live or over.
/// Nothing is changed. Every pass first opens the directory and checks it
/// (<see cref="StatsDirectory.OpenTrusted"/>: ours, mode 0700, not a link), then lists and reads it
/// through that descriptor, so a directory swapped or opened up after start-up is never read. An incarnation is over when the writer marked it final (it exec'd), when a
/// later image of the same process (same pid and start time, higher generation) exists, or when
/// no process with its pid and start time is running any more (exited, or its pid was reused).</summary>
public sealed class DirectoryScan
{
    public required IReadOnlyList<ScannedSegment> Segments { get; init; }
    public required IReadOnlyList<BadFile> BadFiles { get; init; }
    /// <summary>Names of every segment-named entry present (read or not).</summary>
    public required IReadOnlySet<string> Names { get; init; }
    /// <summary>Set when the directory itself could not be listed, or was not trusted.</summary>
    public string? DirectoryError { get; init; }
    /// <summary>The directory was refused: a link, another user's, or open to other users.</summary>
    public bool Untrusted { get; init; }

    public static DirectoryScan Run(string directory, IProcessProbe? probe = null)
    {
        probe ??= ProcFs.Instance;
        int fd = StatsDirectory.OpenTrusted(directory, out string? problem);
        if (fd < 0)
        {
            bool missing = !Directory.Exists(directory) && !File.Exists(directory) && !IsLink(directory);
            return new DirectoryScan { Segments = [], BadFiles = [], Names = new HashSet<string>(), DirectoryError = problem, Untrusted = !missing };
        }
        try
        {
            return Scan(ThroughDescriptor(fd, directory), probe);
        }
        finally
        {
            Interop.Libc.Close(fd);
        }
    }

    /// <summary>A scan of a directory already opened and checked with <see cref="StatsDirectory.OpenTrusted"/>.</summary>
    public static DirectoryScan RunOpened(int fd, string directory, IProcessProbe? probe = null) =>
        Scan(ThroughDescriptor(fd, directory), probe ?? ProcFs.Instance);

    /// <summary>The opened directory's path through /proc (so names resolve in the directory that
    /// was checked, not in whatever the name points at now); the name itself without /proc.</summary>
    public static string ThroughDescriptor(int fd, string directory)
    {
        string viaFd = $"/proc/self/fd/{fd}";
        return Directory.Exists(viaFd) ? viaFd : directory;
    }

    private static bool IsLink(string path) => Interop.Libc.LStat(path, out var st) == 0 && st.IsSymlink;

    private static DirectoryScan Scan(string directory, IProcessProbe probe)
    {
        List<string> names;
        try
        {
            names = StatsDirectory.ListSegmentNames(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new DirectoryScan { Segments = [], BadFiles = [], Names = new HashSet<string>(), DirectoryError = e.Message };
        }
        names.Sort(StringComparer.Ordinal);

        var read = new List<(ProcessStats Stats, FileIdentity Identity)>();
        var bad = new List<BadFile>();
        foreach (string name in names)
        {
            var result = SegmentReader.Read(Path.Combine(directory, name));
            switch (result.Status)
            {
                case ReadStatus.Ok:
                    read.Add((result.Stats!, result.Identity));
                    break;
                case ReadStatus.Error:
                    bad.Add(new BadFile(result.Identity, result.Error, result.Detail));
                    break;
            }
        }

        var newest = new Dictionary<(int, ulong), uint>();
        foreach (var (s, _) in read)
        {
            var id = (s.Pid, s.StartTime);
            if (!newest.TryGetValue(id, out uint g) || s.Generation > g) newest[id] = s.Generation;
        }
        var running = new Dictionary<(int, ulong), bool>();
        var segments = new List<ScannedSegment>(read.Count);
        foreach (var (s, identity) in read)
        {
            var id = (s.Pid, s.StartTime);
            if (!running.TryGetValue(id, out bool alive))
                running[id] = alive = probe.IsRunning(s.Pid, s.StartTime);
            bool over = s.IsFinal || s.Generation < newest[id] || !alive;
            segments.Add(new ScannedSegment(s, identity, over, alive));
        }
        return new DirectoryScan { Segments = segments, BadFiles = bad, Names = names.ToHashSet(StringComparer.Ordinal) };
    }
}
