using System.Net;
using System.Net.Sockets;
using Konfiscator.Tool.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Prometheus;

namespace Konfiscator.Tool.Http;

/// <summary>Serves <c>/metrics</c> with Kestrel. The exposition itself is prometheus-net's: the
/// Prometheus text format (0.0.4), or OpenMetrics 1.0 when the scraper's Accept header asks for
/// <c>application/openmetrics-text</c> (as Prometheus servers do).</summary>
internal sealed class MetricsServer : IAsyncDisposable
{
    public const string PrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
    public const string OpenMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    private readonly WebApplication _app;

    private MetricsServer(WebApplication app, IReadOnlyList<Uri> urls)
    {
        _app = app;
        Urls = urls;
    }

    /// <summary>Where it listens, with the real port (also when port 0 was asked for).</summary>
    public IReadOnlyList<Uri> Urls { get; }

    /// <summary>A URL a local client can use to reach /metrics.</summary>
    public Uri MetricsUrl
    {
        get
        {
            var url = Urls[0];
            string host = url.Host is "[::]" or "0.0.0.0" or "+" or "*" ? "localhost" : url.Host;
            return new UriBuilder(url) { Host = host, Path = "/metrics" }.Uri;
        }
    }

    /// <summary>Binds and starts serving; a <see cref="ToolException"/> with a clear message when
    /// the address cannot be used (port in use, no permission, address not on this host).</summary>
    public static async Task<MetricsServer> StartAsync(ListenAddress listen, KonfiscatorMetrics metrics, string directory, CancellationToken cancel = default,
        ProfileEndpoint? profiles = null)
    {
        // The page's charts: the last minutes of every live process, fed by each collection.
        var web = new Web.WebApi(directory, new Web.History(), profiles?.Symbolizer);
        metrics.Collected += web.History.Record;
        // The empty builder reads no configuration files or environment (an appsettings.json in
        // the current directory must not add endpoints) and logs nothing.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(options =>
        {
            options.AddServerHeader = false;
            if (listen.Localhost) options.ListenLocalhost(listen.Port);
            else if (listen.Address is null) options.ListenAnyIP(listen.Port);
            else options.Listen(listen.Address, listen.Port);
        });
        // Signals belong to the tool (run forwards them to its command), not to the host.
        builder.Services.AddSingleton<IHostLifetime, PassiveLifetime>();
        var app = builder.Build();
        app.Run(async context =>
        {
            if (profiles is not null && await profiles.TryHandleAsync(context)) return;
            await HandleAsync(context, metrics, web);
        });
        try
        {
            await app.StartAsync(cancel);
        }
        catch (Exception e) when (Bind(e) is { } reason)
        {
            await app.DisposeAsync();
            throw new ToolException($"cannot listen on {listen}: {reason}");
        }
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var urls = addresses.Select(a => new Uri(a.Replace("://+:", "://[::]:").Replace("://*:", "://[::]:"))).ToList();
        return new MetricsServer(app, urls);
    }

    private static string? Bind(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is SocketException s)
                return s.SocketErrorCode switch
                {
                    SocketError.AddressAlreadyInUse => "address already in use (is another exporter running? pick another port with --listen)",
                    SocketError.AccessDenied => "permission denied (ports below 1024 need privileges)",
                    SocketError.AddressNotAvailable => "that address does not belong to this host",
                    _ => s.Message,
                };
        }
        return e is IOException ? e.Message : null;
    }

    /// <summary>The web page at / (see docs/web.md).</summary>
    public Uri PageUrl => new UriBuilder(MetricsUrl) { Path = "/" }.Uri;

    private static async Task HandleAsync(HttpContext context, KonfiscatorMetrics metrics, Web.WebApi web)
    {
        var request = context.Request;
        var response = context.Response;
        if (request.Path == "/metrics" || request.Path == "/metrics/")
        {
            if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
            {
                response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                response.Headers.Allow = "GET, HEAD";
                return;
            }
            bool openMetrics = WantsOpenMetrics(request.Headers.Accept);
            var body = new MemoryStream();
            try
            {
                await metrics.Registry.CollectAndExportAsTextAsync(body,
                    openMetrics ? ExpositionFormat.OpenMetricsText : ExpositionFormat.PrometheusText, context.RequestAborted);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                response.StatusCode = StatusCodes.Status500InternalServerError;
                response.ContentType = "text/plain; charset=utf-8";
                await response.WriteAsync($"konfiscator: collecting failed: {e.Message}\n");
                return;
            }
            response.ContentType = openMetrics ? OpenMetricsContentType : PrometheusContentType;
            response.ContentLength = body.Length;
            if (HttpMethods.IsHead(request.Method)) return;
            body.Position = 0;
            await body.CopyToAsync(response.Body, context.RequestAborted);
            return;
        }
        if (await web.TryHandleAsync(context)) return;
        response.StatusCode = StatusCodes.Status404NotFound;
        response.ContentType = "text/plain; charset=utf-8";
        await response.WriteAsync("not found; the metrics are at /metrics, the page at /\n");
    }

    /// <summary>True when the Accept header lists <c>application/openmetrics-text</c> with a
    /// quality above 0 and at least that of the Prometheus text format.</summary>
    internal static bool WantsOpenMetrics(string? accept)
    {
        if (string.IsNullOrWhiteSpace(accept)) return false;
        double openMetrics = -1, text = -1;
        foreach (string range in accept.Split(','))
        {
            string[] parts = range.Split(';');
            string type = parts[0].Trim().ToLowerInvariant();
            double q = 1;
            foreach (string p in parts.Skip(1))
            {
                string[] kv = p.Split('=', 2);
                if (kv.Length == 2 && kv[0].Trim().Equals("q", StringComparison.OrdinalIgnoreCase)
                    && double.TryParse(kv[1].Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v))
                    q = v;
            }
            if (type == "application/openmetrics-text") openMetrics = Math.Max(openMetrics, q);
            else if (type == "text/plain") text = Math.Max(text, q);
        }
        return openMetrics > 0 && openMetrics >= text;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _app.StopAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await _app.DisposeAsync();
    }

    private sealed class PassiveLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
