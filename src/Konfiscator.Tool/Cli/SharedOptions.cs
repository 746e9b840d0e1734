using System.CommandLine;
using Konfiscator.Tool.Http;

namespace Konfiscator.Tool.Cli;

/// <summary>Options several verbs share, validated at parse time so that a bad value is a usage error.</summary>
internal static class SharedOptions
{
    public static Option<string> Listen() => new("--listen", "-l")
    {
        Description = "Address to serve /metrics on, ADDR:PORT (:PORT = all interfaces, port 0 = any free port)",
        HelpName = "ADDR:PORT",
        DefaultValueFactory = _ => ListenAddress.Default,
        Validators =
        {
            result =>
            {
                string? text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
                if (text is not null && !ListenAddress.TryParse(text, out _, out string error))
                    result.AddError($"--listen: {error}");
            },
        },
    };

    public static Option<bool> PerPid() => new("--per-pid")
    {
        Description = "Label series by pid as well as by command (for a single run; every process gets its own series)",
    };

    public static Option<string?> StatsDir() => new("--stats-dir")
    {
        Description = "The stats directory (default: $KONFISCATOR_STATS_DIR, else /dev/shm/konfiscator-<uid>)",
        HelpName = "DIR",
    };

    public static ListenAddress ParseListen(string text) =>
        ListenAddress.TryParse(text, out var address, out string error)
            ? address!
            : throw new ToolException($"--listen: {error}", ExitCodes.Usage);
}
