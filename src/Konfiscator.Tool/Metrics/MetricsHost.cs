using Konfiscator.Reader;
using Konfiscator.Tool.Http;

namespace Konfiscator.Tool.Metrics;

/// <summary>Everything that serves one stats directory: the claim on it (exporter.pid), the
/// collector, the metrics, the HTTP server and the background collection (every second, so files
/// of ended processes are folded in and removed even when nobody scrapes).</summary>
internal sealed class MetricsHost : IAsyncDisposable
{
    public static readonly TimeSpan CollectInterval = TimeSpan.FromSeconds(1);

    private readonly ExporterClaim? _claim;
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;
    private readonly TextWriter _log;

    private MetricsHost(string directory, ExporterClaim? claim, KonfiscatorMetrics metrics, TextWriter log)
    {
        Directory = directory;
        _claim = claim;
        Metrics = metrics;
        _log = log;
    }

    public string Directory { get; }
    public KonfiscatorMetrics Metrics { get; }
    public MetricsServer? Server { get; private set; }

    /// <summary>Claims the directory, binds the server, makes a first collection and starts the
    /// background loop. <paramref name="requireClaim"/>: fail when another live collector holds the
    /// directory (the exporter); otherwise only read it (run with a shared directory).</summary>
    /// <param name="listen">null: no server (run --no-serve), collection only.</param>
    /// <param name="onFold">called with each ended process's final figures and segment path (run's leak report)</param>
    public static async Task<MetricsHost> StartAsync(string directory, ListenAddress? listen, bool perPid, bool requireClaim, TextWriter log,
        Action<Reader.ProcessStats, string>? onFold = null, bool keepEndedGauges = false)
    {
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var claim = ExporterClaim.TryClaim(directory, out int holder);
        if (claim is null)
        {
            string message = $"{directory} is already collected by process {holder} (its {Reader.SegmentFileName.ExporterPidFile})";
            if (requireClaim)
                throw new ToolException($"{message}; stop it or use another --stats-dir");
            log.WriteLine($"konfiscator: {message}; only reading it, that process folds in and removes ended processes");
        }
        var symbolizer = new Profiling.Symbolizer();
        var ended = new Profiling.EndedProfiles();
        KonfiscatorMetrics? metrics = null;
        var collector = new Collector(directory, new CollectorOptions
        {
            RemoveCollected = claim is not null,
            OnFold = (stats, path) =>
            {
                metrics?.Samples?.OnFold(stats, path);
                ended.Remember(stats, path);
                onFold?.Invoke(stats, path);
            },
        });
        metrics = new KonfiscatorMetrics(collector, perPid, samples: new SampleMetrics(directory, symbolizer, Prometheus.Metrics.WithCustomRegistry(registry)), registry: registry, keepEndedGauges: keepEndedGauges);
        var host = new MetricsHost(directory, claim, metrics, log);
        metrics.Collected += host.Report;
        try
        {
            if (listen is not null)
                host.Server = await MetricsServer.StartAsync(listen, metrics, directory, profiles: new ProfileEndpoint(directory, symbolizer, ended));
        }
        catch
        {
            claim?.Dispose();
            throw;
        }
        host.Collect();
        host._loop = host.LoopAsync();
        return host;
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(CollectInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
                Collect();
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Collects now (never throws: a failure is reported and the next round tries again).</summary>
    public Snapshot? Collect()
    {
        try
        {
            return Metrics.Update();
        }
        catch (Exception e)
        {
            _log.WriteLine($"konfiscator: collecting {Directory} failed: {e.Message}");
            return null;
        }
    }

    private string? _lastDirectoryError;

    private void Report(Snapshot snapshot)
    {
        foreach (var bad in snapshot.NewBadFiles)
            _log.WriteLine($"konfiscator: skipping {Path.Combine(Directory, bad.Identity.Name)}: {bad.Detail}");
        if (snapshot.DirectoryError != _lastDirectoryError && snapshot.DirectoryError is not null)
            _log.WriteLine(snapshot.DirectoryUntrusted
                ? $"konfiscator: {snapshot.DirectoryError}; not reading it until that is fixed"
                : $"konfiscator: cannot list {Directory}: {snapshot.DirectoryError}");
        _lastDirectoryError = snapshot.DirectoryError;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        if (Server is not null) await Server.DisposeAsync();
        _claim?.Dispose();
        _stop.Dispose();
    }
}
