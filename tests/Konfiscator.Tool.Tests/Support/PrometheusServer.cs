using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Konfiscator.Tool.Tests.Support;

/// <summary>A real Prometheus server (Debian's <c>prometheus</c>, on PATH) on a free loopback
/// port, with a temporary storage directory and a generated configuration scraping one target
/// every second. Queried through its HTTP API.</summary>
internal sealed class PrometheusServer : IDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir;
    private readonly StringBuilder _log = new();

    private PrometheusServer(Process process, TempDir dir, Uri api)
    {
        _process = process;
        _dir = dir;
        Api = api;
    }

    public Uri Api { get; }
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>Full path of a program on PATH, or null.</summary>
    public static string? Which(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => System.IO.Path.Combine(d, program))
            .FirstOrDefault(File.Exists);

    /// <summary>The binary, or a clear failure: CI installs it (apt-get install -y prometheus).</summary>
    public static string Require(string program) =>
        Which(program) ?? throw new Xunit.Sdk.XunitException(
            $"'{program}' is not on PATH; install Debian's prometheus package (apt-get install -y prometheus)");

    public static PrometheusServer Start(Uri metricsUrl, string job = "konfiscator")
    {
        string binary = Require("prometheus");
        var dir = new TempDir("prom");
        int port = Net.FreePort();
        string config = $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: {job}
                metrics_path: {metricsUrl.AbsolutePath}
                static_configs:
                  - targets: ["{metricsUrl.Host}:{metricsUrl.Port}"]
            """;
        File.WriteAllText(dir.File("prometheus.yml"), config);
        var start = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dir.Path,
        };
        foreach (string a in new[]
                 {
                     $"--config.file={dir.File("prometheus.yml")}",
                     $"--storage.tsdb.path={dir.File("data")}",
                     $"--web.listen-address=127.0.0.1:{port}",
                     "--log.level=warn",
                 })
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var server = new PrometheusServer(process, dir, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>An instant query; the value of the first result, or null when there is none yet.</summary>
    public async Task<double?> QueryAsync(string promql)
    {
        try
        {
            string url = $"{Api}api/v1/query?query={Uri.EscapeDataString(promql)}";
            using var doc = JsonDocument.Parse(await Net.Http.GetStringAsync(url));
            var result = doc.RootElement.GetProperty("data").GetProperty("result");
            if (result.GetArrayLength() == 0) return null;
            string value = result[0].GetProperty("value")[1].GetString()!;
            return double.Parse(value, CultureInfo.InvariantCulture);
        }
        catch (HttpRequestException)
        {
            return null; // not up yet
        }
    }

    /// <summary>Queries until the result satisfies <paramref name="accept"/> (bounded, ~60 s).</summary>
    public async Task<double> WaitForAsync(string promql, Func<double, bool> accept, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        double? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new Xunit.Sdk.XunitException($"prometheus exited ({_process.ExitCode}):\n{Log}");
            last = await QueryAsync(promql);
            if (last is double v && accept(v)) return v;
            await Task.Delay(250);
        }
        throw new Xunit.Sdk.XunitException($"{promql} = {last?.ToString() ?? "nothing"} after waiting; prometheus log:\n{Log}");
    }

    /// <summary>The health of the scrape target as Prometheus sees it ("up", "down", "unknown").</summary>
    public async Task<string> TargetHealthAsync()
    {
        using var doc = JsonDocument.Parse(await Net.Http.GetStringAsync($"{Api}api/v1/targets"));
        var active = doc.RootElement.GetProperty("data").GetProperty("activeTargets");
        return active.GetArrayLength() == 0 ? "none" : $"{active[0].GetProperty("health").GetString()} {active[0].GetProperty("lastError").GetString()}";
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        _dir.Dispose();
    }
}

/// <summary><c>promtool check metrics</c> on an exposition.</summary>
internal static class Promtool
{
    public static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition)
    {
        string binary = PrometheusServer.Require("promtool");
        var start = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("check");
        start.ArgumentList.Add("metrics");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
