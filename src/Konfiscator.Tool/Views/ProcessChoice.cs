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
        Description = "The process, same as -p (default: the only, or most recently started, live one)",
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
            throw new ToolException($"no stats directory at {directories[0]} (has any program run with libkonfiscator.so? " +
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
                   ?? throw new ToolException(NoSegmentFor(p, where));
        }
        var live = all.Where(s => s.Live).ToList();
        if (name is not null)
        {
            var named = live.Where(s => s.Stats.Command == name).ToList();
            if (named.Count == 0)
                throw new ToolException($"no live process named '{name}' publishes statistics in {where} (konfiscator ps lists them)");
            log.WriteLine(named.Count == 1
                ? $"konfiscator: chose pid {named[0].Stats.Pid} ({named[0].Stats.Command}), the only live process named '{name}'"
                : $"konfiscator: chose pid {named[0].Stats.Pid} ({named[0].Stats.Command}), the most recently started of {named.Count} processes named '{name}'; -p PID picks another (konfiscator ps lists them)");
            return named[0];
        }
        if (live.Count == 0)
            throw new ToolException($"no live process publishes statistics in {where} " +
                                    "(start one with 'konfiscator run -- CMD', or LD_PRELOAD=libkonfiscator.so)");
        log.WriteLine(live.Count == 1
            ? $"konfiscator: chose pid {live[0].Stats.Pid} ({live[0].Stats.Command}), the only live process that publishes"
            : $"konfiscator: chose pid {live[0].Stats.Pid} ({live[0].Stats.Command}), the most recently started of {live.Count} live processes; -p PID or -n NAME picks another (konfiscator ps lists them)");
        return live[0];
    }

    /// <summary>Why a pid has no segment: it does not exist, or it runs without the library
    /// (a set-user-ID program, whose loader ignores LD_PRELOAD, gets its own hint).</summary>
    private static string NoSegmentFor(int pid, string where)
    {
        if (ProcFs.Instance.ReadStat(pid) is null)
            return $"no process {pid} is running (and none with that pid left statistics in {where})";
        string name = ReadComm(pid) is { } comm ? $"process {pid} ({comm})" : $"process {pid}";
        if (IsSetId(pid))
            return $"{name} runs a set-user-ID or set-group-ID program: the loader ignores LD_PRELOAD for it, " +
                   "so it runs with glibc's malloc and publishes nothing";
        return $"{name} is running but publishes no statistics in {where}: it was not started with " +
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

    /// <summary>Reads the chosen process again (its statistics now); null when its file is gone.</summary>
    public static ProcessStats? Reread(Publisher publisher)
    {
        var result = SegmentReader.Read(publisher.SegmentPath);
        return result.Ok && result.Stats!.Key == publisher.Stats.Key ? result.Stats : null;
    }
}
