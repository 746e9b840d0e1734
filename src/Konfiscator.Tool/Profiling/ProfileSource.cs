using Konfiscator.Reader;

namespace Konfiscator.Tool.Profiling;

/// <summary>Finds the segment of the process a profile is asked for and reads its sample tables:
/// by pid (its live image, else its latest file still in the directory, so a process that has
/// exited can still be explained until its file is collected), by command (the newest live process
/// of the group), or the most recently started live process.</summary>
internal static class ProfileSource
{
    public static ScannedSegment Choose(string directory, int? pid, string? command)
    {
        if (!Directory.Exists(directory))
            throw new ToolException($"no stats directory at {directory} (has any process run under konfiscator? " +
                                    $"set --stats-dir or {StatsDirectory.DirectoryVariable})");
        var scan = DirectoryScan.Run(directory);
        if (scan.DirectoryError is { } listError)
            throw new ToolException($"cannot list {directory}: {listError}");
        IEnumerable<ScannedSegment> candidates = scan.Segments;
        if (pid is int p)
        {
            return candidates.Where(s => s.Stats.Pid == p)
                       .OrderByDescending(s => s.Live).ThenByDescending(s => s.Stats.StartTime).ThenByDescending(s => s.Stats.Generation)
                       .FirstOrDefault()
                   ?? throw new ToolException($"process {p} publishes no figures in {directory}{EndedNote}");
        }
        if (command is not null)
        {
            return candidates.Where(s => s.Stats.Command == command)
                       .OrderByDescending(s => s.Live).ThenByDescending(s => s.Stats.StartTime).ThenByDescending(s => s.Stats.Pid)
                       .FirstOrDefault()
                   ?? throw new ToolException($"no process of command {command} publishes figures in {directory}{EndedNote}");
        }
        return candidates.Where(s => s.Live)
                   .OrderByDescending(s => s.Stats.StartTime).ThenByDescending(s => s.Stats.Pid).ThenByDescending(s => s.Stats.Generation)
                   .FirstOrDefault()
               ?? throw new ToolException($"no live process publishes figures in {directory}");
    }

    // An exporter folds an ended process's counters into its totals and then removes the file, so
    // /metrics still shows the process while its file is gone: say where its profile went.
    private static readonly string EndedNote =
        " (a process that has ended is profiled from its file until an exporter collects it, then by" +
        $" that exporter, which keeps the profile of the newest process of each of the last {EndedProfiles.Kept} commands it collected)";

    /// <summary>The chosen process's profile, or a <see cref="ToolException"/> saying why there is none.</summary>
    public static HeapProfile Load(string directory, ScannedSegment segment, bool peak, Symbolizer symbolizer)
    {
        string path = Path.Combine(directory, segment.Stats.FileName);
        var read = SampleReader.Read(path, peak);
        if (!read.Ok)
            throw new ToolException(read.Error == SampleReadError.Absent
                ? $"process {segment.Stats.Pid} ({segment.Stats.Command}) publishes no allocation samples: {read.Detail}"
                : $"cannot read the allocation samples of process {segment.Stats.Pid} ({segment.Stats.Command}): " +
                  $"{SampleReader.ReasonLabel(read.Error)}: {read.Detail}");
        return HeapProfile.Build(read.Table!, symbolizer, segment.Stats.Pid, segment.Stats.Command, peak);
    }
}
