using System.CommandLine;
using Konfiscator.Reader;
using Konfiscator.Tool.Metrics;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator exporter [--listen ADDR:PORT] [--per-pid] [--stats-dir DIR]</c>: serves
/// /metrics for every process that publishes a segment in the directory, until SIGINT/SIGTERM.</summary>
internal static class ExporterCommand
{
    public static Command Create()
    {
        var listen = Cli.ListenOption();
        var perPid = Cli.PerPidOption();
        var statsDir = Cli.StatsDirOption();
        var exporter = new Command("exporter", "Serve /metrics (Prometheus text or OpenMetrics) for every process publishing in the stats directory")
        {
            listen, perPid, statsDir,
        };
        exporter.SetAction((parse, cancel) => RunAsync(
            Cli.ParseListen(parse.GetValue(listen)!),
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
