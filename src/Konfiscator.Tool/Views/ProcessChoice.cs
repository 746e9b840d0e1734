using System.CommandLine;
using Konfiscator.Reader;

namespace Konfiscator.Tool.Views;

/// <summary>Which process <c>stats</c>, <c>top</c> and <c>heap</c> look at: <c>-p PID</c>, <c>-n NAME</c>,
/// or the most recently started live one; when the tool chooses, it says which one on stderr.</summary>
internal static class ProcessChoice
{
    public static Option<int?> PidOption() => new("-p", "--pid")
    {
        Description = "The process to show",
        HelpName = "PID",
        Validators =
        {
            result =>
            {
                if (result.Tokens.Count > 0 && (!int.TryParse(result.Tokens[^1].Value, out int v) || v <= 0))
                    result.AddError($"-p: PID must be a positive number, not '{result.Tokens[^1].Value}'");
            },
        },
    };

    public static Option<string?> NameOption() => new("-n", "--name")
    {
        Description = "The most recently started live process of this command name",
        HelpName = "NAME",
    };

    public static Argument<int?> PidArgument() => new("PID")
    {
        Arity = ArgumentArity.ZeroOrOne,
        Description = "The process (same as -p)",
        Validators =
        {
            result =>
            {
                if (result.Tokens.Count > 0 && (!int.TryParse(result.Tokens[0].Value, out int value) || value <= 0))
                    result.AddError($"PID must be a positive number, not '{result.Tokens[0].Value}'");
            },
        },
    };

    /// <summary>Finds the process. <paramref name="pid"/>: its live image, else its latest image whose
    /// file is still there. <paramref name="name"/>: the newest live process of that command. Neither:
    /// the newest live process. Tells <paramref name="log"/> which it chose when it chose.</summary>
    public static Publisher Choose(int? pid, string? name, string? statsDir, TextWriter log)
    {
        var directories = Publishers.Directories(statsDir);
        if (statsDir is not null && !Directory.Exists(directories[0]))
            throw new ToolException($"no stats directory at {directories[0]} (has any process run under konfiscator? " +
                                    $"set --stats-dir or {StatsDirectory.DirectoryVariable})");
        if (pid is not null && name is not null)
            throw new ToolException("give either -p PID or -n NAME, not both", ExitCodes.Usage);
        var problems = new List<(string Directory, string Error, bool Untrusted)>();
        var all = Publishers.Scan(directories, problems);
        // The directory asked for (or the default) must be readable and trusted; a run's that is
        // not is only skipped.
        if (problems.FirstOrDefault(p => p.Directory == directories[0]) is { Error: not null } bad)
            throw new ToolException(bad.Untrusted ? bad.Error : $"cannot list {bad.Directory}: {bad.Error}");
        string where = directories.Count == 1 ? directories[0] : $"{directories[0]} or a konfiscator run's directory";

        if (pid is int p)
        {
            return all.Where(s => s.Stats.Pid == p).OrderByDescending(s => s.Live).FirstOrDefault()
                   ?? throw new ToolException($"process {p} publishes no figures in {where}");
        }
        var live = all.Where(s => s.Live).ToList();
        if (name is not null)
        {
            var named = live.Where(s => s.Stats.Command == name).ToList();
            if (named.Count == 0)
                throw new ToolException($"no live process named '{name}' publishes figures in {where} (konfiscator ps lists them)");
            log.WriteLine(named.Count == 1
                ? $"konfiscator: chose pid {named[0].Stats.Pid} ({named[0].Stats.Command}), the only live process named '{name}'"
                : $"konfiscator: chose pid {named[0].Stats.Pid} ({named[0].Stats.Command}), the most recently started of {named.Count} processes named '{name}'; -p PID picks another (konfiscator ps lists them)");
            return named[0];
        }
        if (live.Count == 0)
            throw new ToolException($"no live process publishes figures in {where}");
        log.WriteLine(live.Count == 1
            ? $"konfiscator: chose pid {live[0].Stats.Pid} ({live[0].Stats.Command}), the only live process that publishes"
            : $"konfiscator: chose pid {live[0].Stats.Pid} ({live[0].Stats.Command}), the most recently started of {live.Count} live processes; -p PID or -n NAME picks another (konfiscator ps lists them)");
        return live[0];
    }

    /// <summary>Reads the chosen process again (its figures now); null when its file is gone.</summary>
    public static ProcessStats? Reread(Publisher publisher)
    {
        var result = SegmentReader.Read(publisher.SegmentPath);
        return result.Ok && result.Stats!.Key == publisher.Stats.Key ? result.Stats : null;
    }
}
