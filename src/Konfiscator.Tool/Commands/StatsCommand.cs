using System.CommandLine;
using Konfiscator.Tool.Cli;
using Konfiscator.Tool.Output;
using Konfiscator.Tool.Views;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator stats [PID | -p PID | -n NAME] [--json] [--all] [--stats-dir DIR]</c>: one
/// process's statistics now. Reads only: it never folds in or removes anything.</summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var pidArgument = ProcessChoice.PidArgument();
        var pid = ProcessChoice.PidOption();
        var name = ProcessChoice.NameOption();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table (every value)" };
        var all = new Option<bool>("--all") { Description = "Show every row of the table, also those that are zero" };
        var statsDir = SharedOptions.StatsDir();
        var stats = new Command("stats", "Print one process's allocator statistics (default: the most recently started live one)")
        {
            pidArgument, pid, name, json, all, statsDir,
        };
        Help.Examples(stats,
            ("konfiscator stats", "the most recently started process that publishes"),
            ("konfiscator stats -n python3", "the newest live python3 (stderr says which pid)"),
            ("konfiscator stats 4242 --all", "process 4242, zero rows included"),
            ("konfiscator stats --json > now.json", "every value, for scripts"));
        stats.SetAction(parse =>
        {
            if (parse.GetValue(pid) is not null && parse.GetValue(pidArgument) is not null)
                throw new ToolException("give the PID once: either as an argument or with -p", ExitCodes.Usage);
            int? p = parse.GetValue(pid) ?? parse.GetValue(pidArgument);
            return Run(p, parse.GetValue(name), parse.GetValue(json), parse.GetValue(all), parse.GetValue(statsDir));
        });
        return stats;
    }

    public static int Run(int? pid, string? name, bool json, bool all, string? statsDir)
    {
        var chosen = ProcessChoice.Choose(pid, name, statsDir, Console.Error);
        if (json)
        {
            using var stdout = Console.OpenStandardOutput();
            StatsOutput.Json(stdout, chosen.Stats, chosen.Live, chosen.Directory);
        }
        else
        {
            Format.OutputConsole().Write(StatsOutput.Human(chosen.Stats, chosen.Live, chosen.Directory, all));
        }
        return ExitCodes.Ok;
    }
}
