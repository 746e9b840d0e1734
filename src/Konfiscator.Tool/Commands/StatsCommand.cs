using System.CommandLine;
using Konfiscator.Reader;
using Konfiscator.Tool.Output;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator stats [PID] [--json] [--stats-dir DIR]</c>: one process's figures now.
/// Reads only: it never folds in or removes anything.</summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var pid = new Argument<int?>("PID")
        {
            Arity = ArgumentArity.ZeroOrOne,
            Description = "The process (default: the only, or most recently started, live one)",
        };
        pid.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && (!int.TryParse(result.Tokens[0].Value, out int value) || value <= 0))
                result.AddError($"PID must be a positive number, not '{result.Tokens[0].Value}'");
        });
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var statsDir = Cli.StatsDirOption();
        var stats = new Command("stats", "Print one process's figures") { pid, json, statsDir };
        stats.SetAction(parse => Run(parse.GetValue(pid), parse.GetValue(json), parse.GetValue(statsDir)));
        return stats;
    }

    public static int Run(int? pid, bool json, string? statsDir)
    {
        string directory = StatsDirectory.Resolve(statsDir);
        if (!Directory.Exists(directory))
            throw new ToolException($"no stats directory at {directory} (has any process run under konfiscator? " +
                                    $"set --stats-dir or {StatsDirectory.DirectoryVariable})");
        var scan = DirectoryScan.Run(directory);
        if (scan.DirectoryError is { } listError)
            throw new ToolException(scan.Untrusted ? listError : $"cannot list {directory}: {listError}");

        ScannedSegment? chosen;
        if (pid is int p)
        {
            // Its live image if there is one, else its latest image whose file is still there.
            chosen = scan.Segments.Where(s => s.Stats.Pid == p)
                .OrderByDescending(s => s.Live).ThenByDescending(s => s.Stats.StartTime).ThenByDescending(s => s.Stats.Generation)
                .FirstOrDefault();
            if (chosen is null)
                throw new ToolException($"process {p} publishes no figures in {directory}");
        }
        else
        {
            chosen = scan.Segments.Where(s => s.Live)
                .OrderByDescending(s => s.Stats.StartTime).ThenByDescending(s => s.Stats.Pid).ThenByDescending(s => s.Stats.Generation)
                .FirstOrDefault();
            if (chosen is null)
                throw new ToolException($"no live process publishes figures in {directory}");
        }

        if (json)
        {
            using var stdout = Console.OpenStandardOutput();
            StatsOutput.Json(stdout, chosen.Stats, chosen.Live, directory);
        }
        else
        {
            Format.OutputConsole().Write(StatsOutput.Human(chosen.Stats, chosen.Live, directory));
        }
        return ExitCodes.Ok;
    }
}
