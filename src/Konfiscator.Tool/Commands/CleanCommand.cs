using System.CommandLine;
using Konfiscator.Tool.Cli;
using Konfiscator.Reader;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator clean [--dry-run] [--stats-dir DIR]</c>: removes the segments of
/// processes that are over and every file that is not a segment from the stats directory. A
/// process start never does this work (it looks at a few entries at most), so without a running
/// exporter the directory is cleaned by this command.</summary>
internal static class CleanCommand
{
    public static Command Create()
    {
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Only list what would be removed, and why" };
        var statsDir = SharedOptions.StatsDir();
        var clean = new Command("clean",
            "Remove segments of processes that have ended and files that are not segments from the stats directory " +
            "(live segments, those a still running process left behind when it exec'd, subdirectories and a running exporter's files stay; " +
            "an exporter's ended segments are left to it)")
        {
            dryRun, statsDir,
        };
        Help.Examples(clean,
            ("konfiscator clean --dry-run", "what would go, and why"),
            ("konfiscator clean --stats-dir /srv/kstats", "another directory"));
        clean.SetAction(parse => Run(parse.GetValue(dryRun), parse.GetValue(statsDir)));
        return clean;
    }

    public static int Run(bool dryRun, string? statsDir)
    {
        string directory = StatsDirectory.Resolve(statsDir);
        CleanResult result;
        try
        {
            result = DirectoryCleaner.Clean(directory, dryRun);
        }
        catch (DirectoryNotFoundException)
        {
            Console.WriteLine($"no stats directory at {directory}; nothing to clean");
            return ExitCodes.Ok;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ToolException($"{e.Message}; not cleaning it");
        }
        catch (IOException e)
        {
            throw new ToolException($"cannot clean {directory}: {e.Message}");
        }

        var output = Console.Out;
        string verb = dryRun ? "would remove" : "removed";
        if (dryRun)
            foreach (var entry in result.Removed)
                output.WriteLine($"would remove {entry.Name}: {entry.Reason}");
        int ended = result.Removed.Count(e => e.EndedSegment);
        output.WriteLine($"{directory}: {verb} {Files(result.Removed.Count)} " +
                         $"({ended} of ended processes, {result.Removed.Count - ended} other), kept {result.Kept}");
        if (result.LeftToExporter > 0)
            output.WriteLine($"left {Files(result.LeftToExporter)} of ended processes to the exporter (pid {result.ExporterPid}), which folds them in and removes them");
        foreach (var (entry, error) in result.Failed)
            Console.Error.WriteLine($"konfiscator: cannot remove {Path.Combine(directory, entry.Name)}: {error}");
        return result.Failed.Count == 0 ? ExitCodes.Ok : ExitCodes.Failure;
    }

    private static string Files(int n) => n == 1 ? "1 file" : $"{n} files";
}
