using System.CommandLine;
using Konfiscator.Stats;
using Konfiscator.Tool.Http;

namespace Konfiscator.Tool.Cli;

/// <summary>Options several verbs share, validated at parse time so that a bad value is a usage error.</summary>
internal static class SharedOptions
{
    /// <summary>--listen (also Prometheus exporters' usual --web.listen-address). The default
    /// listens on every interface, as the seed's exporter did; the help says so.</summary>
    public static Option<string> Listen() => new("--listen", "-l", "--web.listen-address")
    {
        Description = "Address to serve /metrics on, ADDR:PORT. The default :8000 listens on EVERY interface " +
                      "(anyone who can reach this host can read the metrics); 127.0.0.1:8000 serves this machine only, " +
                      "the safer choice. Port 0 = any free port",
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

    /// <summary>--interval S: seconds, within [min, max] (ps between its two readings, top between frames).</summary>
    public static Option<double> Interval(string description, double defaultSeconds, double min, double max) => new("--interval")
    {
        Description = description,
        HelpName = "S",
        DefaultValueFactory = _ => defaultSeconds,
        Validators =
        {
            r =>
            {
                if (r.Tokens.Count > 0 && (!double.TryParse(r.Tokens[^1].Value, System.Globalization.CultureInfo.InvariantCulture, out double v) || v < min || v > max))
                    r.AddError(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"--interval: seconds between {min} and {max}"));
            },
        },
    };

    public static Option<bool> PerPid() => new("--per-pid")
    {
        Description = "Label series by pid as well as by command (for a single run; every process gets its own series)",
    };

    public static Option<string?> StatsDir() => new("--stats-dir")
    {
        Description = $"The stats directory (default: ${StatsSchema.DirectoryVariable}, else {StatsSchema.DefaultDirectoryPrefix}<uid>)",
        HelpName = "DIR",
    };

    public static ListenAddress ParseListen(string text) =>
        ListenAddress.TryParse(text, out var address, out string error)
            ? address!
            : throw new ToolException($"--listen: {error}", ExitCodes.Usage);
}
