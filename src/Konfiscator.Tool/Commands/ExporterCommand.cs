using System.CommandLine;
using Konfiscator.Tool.Cli;
using Konfiscator.Reader;
using Konfiscator.Tool.Metrics;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator exporter [--listen ADDR:PORT] [--per-pid] [--stats-dir DIR]</c>: serves
/// /metrics for every process that publishes a segment in the directory, until SIGINT/SIGTERM.</summary>
internal static class ExporterCommand
{
    public static Command Create()
    {
        var listen = SharedOptions.Listen();
        var perPid = SharedOptions.PerPid();
        var statsDir = SharedOptions.StatsDir();
        var exporter = new Command("exporter", "Serve /metrics (Prometheus text or OpenMetrics) for every process publishing in the stats directory")
        {
            listen, perPid, statsDir,
        };
        Help.Examples(exporter,
            ("konfiscator exporter", "every process publishing in the default directory, on :8000"),
            ("konfiscator exporter --listen 127.0.0.1:9100", "loopback only, another port"),
            ("konfiscator exporter --stats-dir /srv/kstats", $"with {Konfiscator.Stats.StatsSchema.DirectoryVariable}=/srv/kstats set for the programs"));
        exporter.SetAction((parse, cancel) => RunAsync(
            SharedOptions.ParseListen(parse.GetValue(listen)!),
            parse.GetValue(perPid),
            parse.GetValue(statsDir)));
        return exporter;
    }

    public static async Task<int> RunAsync(Http.ListenAddress listen, bool perPid, string? statsDir)
    {
        string directory = StatsDirectory.Resolve(statsDir);
        if (StatsDirectory.EnsureTrusted(directory) is { } problem)
            throw new ToolException(problem);

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var signals = new Signals(_ => stop.TrySetResult());
        await using var host = await MetricsHost.StartAsync(directory, listen, perPid, requireClaim: true, Console.Error);
        Console.Error.WriteLine($"konfiscator exporter: serving {directory} at {host.Server!.MetricsUrl}");
        await stop.Task;
        Console.Error.WriteLine("konfiscator exporter: stopping");
        return ExitCodes.Ok;
    }
}
