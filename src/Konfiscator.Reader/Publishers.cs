namespace Konfiscator.Reader;

/// <summary>A process image that publishes figures, and the directory its segment is in.</summary>
public sealed record Publisher(ScannedSegment Segment, string Directory)
{
    public ProcessStats Stats => Segment.Stats;
    public bool Live => Segment.Live;
    public string SegmentPath => Path.Combine(Directory, Segment.Stats.FileName);
}

/// <summary>Finds the processes that publish: in one given directory, or in the default one and
/// every running <c>konfiscator run</c>'s private directory (<see cref="RunRegistry"/>).</summary>
public static class Publishers
{
    /// <summary>The directories to look in: just <paramref name="given"/> when there is one, else
    /// the default (KONFISCATOR_STATS_DIR or /dev/shm/konfiscator-&lt;uid&gt;) and the live runs'.</summary>
    public static IReadOnlyList<string> Directories(string? given)
    {
        if (!string.IsNullOrEmpty(given)) return [StatsDirectory.Resolve(given)];
        var list = new List<string> { StatsDirectory.DefaultPath() };
        foreach (string run in RunRegistry.LiveRunDirectories())
            if (!list.Contains(run, StringComparer.Ordinal)) list.Add(run);
        return list;
    }

    /// <summary>Every segment in <paramref name="directories"/> (live and over), newest first.
    /// A directory that is missing is skipped; one that cannot be read (or is not trusted) is
    /// skipped and reported in <paramref name="problems"/>.</summary>
    public static List<Publisher> Scan(IEnumerable<string> directories, List<(string Directory, string Error, bool Untrusted)>? problems = null)
    {
        var all = new List<Publisher>();
        foreach (string directory in directories)
        {
            if (!System.IO.Directory.Exists(directory)) continue;
            var scan = DirectoryScan.Run(directory);
            if (scan.DirectoryError is { } error) problems?.Add((directory, error, scan.Untrusted));
            all.AddRange(scan.Segments.Select(s => new Publisher(s, directory)));
        }
        return all.OrderByDescending(p => p.Stats.StartTime).ThenByDescending(p => p.Stats.Pid)
            .ThenByDescending(p => p.Stats.Generation).ToList();
    }
}
