using System.CommandLine;
using Konfiscator.Tool.Cli;
using Konfiscator.Reader;
using Konfiscator.Tool.Output;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator stats [PID] [--json] [--all] [--stats-dir DIR]</c>: one process's statistics now.
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
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table (every value)" };
        var all = new Option<bool>("--all") { Description = "Show every row of the table, also those that are zero" };
        var statsDir = SharedOptions.StatsDir();
        var stats = new Command("stats", "Print one process's allocator statistics") { pid, json, all, statsDir };
        Help.Examples(stats,
            ("konfiscator stats", "the most recently started process that publishes"),
            ("konfiscator stats 4242 --all", "process 4242, zero rows included"),
            ("konfiscator stats --json > now.json", "every value, for scripts"));
        stats.SetAction(parse => Run(parse.GetValue(pid), parse.GetValue(json), parse.GetValue(all), parse.GetValue(statsDir)));
        return stats;
    }

    public static int Run(int? pid, bool json, bool all, string? statsDir)
    {
        string directory = StatsDirectory.Resolve(statsDir);
        if (!Directory.Exists(directory))
            throw new ToolException($"no stats directory at {directory} (has any program run with libkonfiscator.so? " +
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
                throw new ToolException(NoSegmentFor(p, directory));
        }
        else
        {
            chosen = scan.Segments.Where(s => s.Live)
                .OrderByDescending(s => s.Stats.StartTime).ThenByDescending(s => s.Stats.Pid).ThenByDescending(s => s.Stats.Generation)
                .FirstOrDefault();
            if (chosen is null)
                throw new ToolException($"no live process publishes statistics in {directory} " +
                                        "(start one with 'konfiscator run -- CMD', or LD_PRELOAD=libkonfiscator.so)");
        }

        if (json)
        {
            using var stdout = Console.OpenStandardOutput();
            StatsOutput.Json(stdout, chosen.Stats, chosen.Live, directory);
        }
        else
        {
            Format.OutputConsole().Write(StatsOutput.Human(chosen.Stats, chosen.Live, directory, all));
        }
        return ExitCodes.Ok;
    }

    /// <summary>Why a pid has no segment: it does not exist, or it runs without the library
    /// (a set-user-ID program, whose loader ignores LD_PRELOAD, gets its own hint).</summary>
    private static string NoSegmentFor(int pid, string directory)
    {
        if (ProcFs.Instance.ReadStat(pid) is null)
            return $"no process {pid} is running (and none with that pid left statistics in {directory})";
        string name = ReadComm(pid) is { } comm ? $"process {pid} ({comm})" : $"process {pid}";
        if (IsSetId(pid))
            return $"{name} runs a set-user-ID or set-group-ID program: the loader ignores LD_PRELOAD for it, " +
                   "so it runs with glibc's malloc and publishes nothing";
        return $"{name} is running but publishes no statistics in {directory}: it was not started with " +
               $"libkonfiscator.so preloaded, or with {StatsDirectory.PublishVariable}=0, or it publishes in another " +
               $"directory (--stats-dir, {StatsDirectory.DirectoryVariable})";
    }

    private static string? ReadComm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>True when the process runs with other credentials than it was started with (real
    /// and effective uid or gid differ), as a set-user-ID program does.</summary>
    private static bool IsSetId(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("Uid:", StringComparison.Ordinal) && !line.StartsWith("Gid:", StringComparison.Ordinal)) continue;
                var ids = line[4..].Split('\t', ' ').Where(x => x.Length > 0).ToArray();
                if (ids.Length >= 2 && ids[0] != ids[1]) return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }
}
