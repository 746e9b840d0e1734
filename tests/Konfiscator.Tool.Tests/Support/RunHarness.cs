namespace Konfiscator.Tool.Tests.Support;

/// <summary>Runs <c>konfiscator run --listen 127.0.0.1:0 [--per-pid] -- CMD…</c> and gives the
/// /metrics URL it serves. End-to-end tests with the real allocator pass
/// <see cref="Artifacts.Tool"/>, so the tool finds artifacts/lib/libkonfiscator.so itself.</summary>
internal static class RunHarness
{
    public static async Task<(ToolProcess Tool, Uri Metrics)> StartAsync(IEnumerable<string> command, bool perPid = false,
        bool hold = false, string? tool = null, IDictionary<string, string?>? environment = null)
    {
        var args = new List<string> { "run", "--listen", "127.0.0.1:0" };
        if (perPid) args.Add("--per-pid");
        if (hold) args.Add("--hold");
        args.Add("--");
        args.AddRange(command);
        var process = ToolProcess.Start(args, environment, tool);
        try
        {
            return (process, await process.WaitForMetricsUrlAsync());
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }
}
