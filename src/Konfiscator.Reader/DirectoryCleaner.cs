using System.Globalization;
using Konfiscator.Reader.Interop;

namespace Konfiscator.Reader;

/// <summary>One file <see cref="DirectoryCleaner"/> removes (or would), and why.</summary>
public sealed record CleanEntry(string Name, string Reason, bool EndedSegment);

/// <summary>What a clean found and did.</summary>
public sealed class CleanResult
{
    public required IReadOnlyList<CleanEntry> Removed { get; init; }
    /// <summary>Files planned for removal that could not be removed, with the error.</summary>
    public required IReadOnlyList<(CleanEntry Entry, string Error)> Failed { get; init; }
    /// <summary>Segments of ended processes left for the live exporter that holds the directory.</summary>
    public int LeftToExporter { get; init; }
    public int ExporterPid { get; init; }
    /// <summary>Entries kept: live segments, segments being created, the live claim, subdirectories.</summary>
    public int Kept { get; init; }
}

/// <summary>Removes what nobody needs from a stats directory: segments of processes that are over
/// (unless a live exporter holds the directory: it folds them in first), files that are not
/// readable segments, anything else that is not a directory, and a stale exporter claim. Live
/// segments, segments being created, a live claim and subdirectories stay. The library leaves this
/// to the exporter and to <c>konfiscator clean</c> so that no process start ever pays for it.
/// The directory must pass <see cref="StatsDirectory.OpenTrusted"/>; everything is done through
/// that descriptor, and a file is removed only if its name still refers to the file judged.</summary>
public static class DirectoryCleaner
{
    private const string ClaimTempPrefix = "." + SegmentFileName.ExporterPidFile + ".";

    /// <summary>Cleans <paramref name="directory"/> (or, with <paramref name="dryRun"/>, only says what
    /// it would remove). Throws <see cref="UnauthorizedAccessException"/> with the reason when the
    /// directory is not trusted, <see cref="DirectoryNotFoundException"/> when it does not exist.</summary>
    public static CleanResult Clean(string directory, bool dryRun, IProcessProbe? probe = null)
    {
        probe ??= ProcFs.Instance;
        if (Libc.LStat(directory, out _) == Libc.ENOENT)
            throw new DirectoryNotFoundException($"no stats directory at {directory}");
        int fd = StatsDirectory.OpenTrusted(directory, out string? problem);
        if (fd < 0) throw new UnauthorizedAccessException(problem);
        try
        {
            return CleanOpened(fd, directory, dryRun, probe);
        }
        finally
        {
            Libc.Close(fd);
        }
    }

    private static CleanResult CleanOpened(int fd, string directory, bool dryRun, IProcessProbe probe)
    {
        string root = DirectoryScan.ThroughDescriptor(fd, directory);
        var claim = ExporterClaim.ReadClaim(Path.Combine(root, SegmentFileName.ExporterPidFile));
        bool exporterAlive = claim is { } c && probe.IsRunning(c.Pid, c.StartTime);

        var scan = DirectoryScan.RunOpened(fd, directory, probe);
        var plan = new List<(CleanEntry Entry, ulong Inode)>();
        int leftToExporter = 0, kept = 0;
        var judged = new HashSet<string>(StringComparer.Ordinal);
        foreach (var segment in scan.Segments)
        {
            judged.Add(segment.Identity.Name);
            if (segment.Live) { kept++; continue; }
            if (exporterAlive) { leftToExporter++; continue; }
            // An image replaced by exec keeps its name while its process runs (docs/metrics.md,
            // "Incarnations"): the process's next image must not take it.
            if (segment.ProcessRunning) { kept++; continue; }
            string why = segment.Stats.IsFinal ? "an image replaced by exec" : "its process has ended";
            plan.Add((new CleanEntry(segment.Identity.Name, $"segment of pid {segment.Stats.Pid.ToString(CultureInfo.InvariantCulture)}: {why}", true), segment.Identity.Inode));
        }
        foreach (var bad in scan.BadFiles)
        {
            judged.Add(bad.Identity.Name);
            plan.Add((new CleanEntry(bad.Identity.Name, $"not a readable segment: {bad.Detail}", false), bad.Identity.Inode));
        }

        foreach (string path in Directory.EnumerateFileSystemEntries(root))
        {
            string name = Path.GetFileName(path);
            if (judged.Contains(name)) continue;
            if (scan.Names.Contains(name)) { kept++; continue; } // a segment being created (or gone): not ours to judge yet
            if (Libc.LStatAt(fd, name, out var st) != 0) continue; // gone meanwhile
            if (st.IsDirectory) { kept++; continue; }
            if (name == SegmentFileName.ExporterPidFile)
            {
                if (exporterAlive) { kept++; continue; }
                plan.Add((new CleanEntry(name, claim is null ? "an unreadable exporter claim" : $"a stale exporter claim (process {claim.Value.Pid} is not running)", false), st.Inode));
                continue;
            }
            if (IsClaimInProgress(name, probe)) { kept++; continue; }
            plan.Add((new CleanEntry(name, st.IsSymlink ? "a symbolic link, not a segment" : "not a segment", false), st.Inode));
        }

        plan.Sort((a, b) => string.CompareOrdinal(a.Entry.Name, b.Entry.Name));
        var removed = new List<CleanEntry>();
        var failed = new List<(CleanEntry, string)>();
        foreach (var (entry, inode) in plan)
        {
            if (dryRun) { removed.Add(entry); continue; }
            // Only the file that was judged: if the name now refers to another, leave it.
            if (Libc.LStatAt(fd, entry.Name, out var now) != 0 || now.Inode != inode) continue;
            if (Libc.UnlinkAt(fd, entry.Name, 0) == 0) removed.Add(entry);
            else failed.Add((entry, System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())));
        }
        return new CleanResult
        {
            Removed = removed,
            Failed = failed,
            LeftToExporter = leftToExporter,
            ExporterPid = exporterAlive ? claim!.Value.Pid : 0,
            Kept = kept,
        };
    }

    /// <summary>".exporter.pid.&lt;pid&gt;.tmp" of an exporter that is claiming the directory right now.</summary>
    private static bool IsClaimInProgress(string name, IProcessProbe probe)
    {
        if (!name.StartsWith(ClaimTempPrefix, StringComparison.Ordinal) || !name.EndsWith(".tmp", StringComparison.Ordinal)) return false;
        string pidText = name[ClaimTempPrefix.Length..^4];
        return int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
               && ProcFs.Instance.ReadStat(pid) is { } stat && probe.IsRunning(pid, stat.StartTime);
    }
}
