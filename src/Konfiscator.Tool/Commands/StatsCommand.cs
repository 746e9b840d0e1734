using System.CommandLine;
using Konfiscator.Reader;
using Konfiscator.Tool.Output;
using Konfiscator.Tool.Views;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator stats [PID | -p PID | -n NAME] [--json] [--stats-dir DIR]</c>: one process's figures now.
/// Reads only: it never folds in or removes anything.</summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var pidArgument = ProcessChoice.PidArgument();
        var pid = ProcessChoice.PidOption();
        var name = ProcessChoice.NameOption();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var statsDir = Cli.StatsDirOption();
        var stats = new Command("stats", "Print one process's figures (default: the most recently started live one)")
        {
            pidArgument, pid, name, json, statsDir,
        };
        stats.SetAction(parse =>
        {
            int? p = parse.GetValue(pid) ?? parse.GetValue(pidArgument);
            if (parse.GetValue(pid) is not null && parse.GetValue(pidArgument) is not null)
                throw new ToolException("give the PID once: either as an argument or with -p", ExitCodes.Usage);
            return Run(p, parse.GetValue(name), parse.GetValue(json), parse.GetValue(statsDir));
        });
        return stats;
    }

    public static int Run(int? pid, string? name, bool json, string? statsDir)
    {
        var chosen = ProcessChoice.Choose(pid, name, statsDir, Console.Error);
        if (json)
        {
            using var stdout = Console.OpenStandardOutput();
            StatsOutput.Json(stdout, chosen.Stats, chosen.Live, chosen.Directory);
        }
        else
        {
            Format.OutputConsole().Write(StatsOutput.Human(chosen.Stats, chosen.Live, chosen.Directory));
        }
        return ExitCodes.Ok;
    }
}
