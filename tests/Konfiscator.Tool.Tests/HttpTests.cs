using System.Net;
using System.Net.Sockets;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Http;
using Konfiscator.Tool.Metrics;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The HTTP side in-process: Kestrel on 127.0.0.1 with a port the OS picks.</summary>
public class HttpTests
{
    private static async Task<(MetricsServer Server, TempDir Dir, Sleeper Process)> StartAsync()
    {
        var dir = new TempDir();
        var p = new Sleeper();
        SegmentBuilder.For(p, "web").Requests(0, StatsLayout.MallocCalls, 40, 6).WriteTo(dir.Path);
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);
        ListenAddress.TryParse("127.0.0.1:0", out var listen, out _);
        return (await MetricsServer.StartAsync(listen!, metrics, dir.Path), dir, p);
    }

    [Fact]
    public async Task Metrics_are_served_as_prometheus_text_by_default()
    {
        var (server, dir, p) = await StartAsync();
        await using (server)
        using (dir)
        using (p)
        {
            Assert.Equal("127.0.0.1", server.MetricsUrl.Host);
            var (type, body) = await Net.ScrapeAsync(server.MetricsUrl);
            Assert.StartsWith("text/plain", type);
            Assert.Contains("version=0.0.4", type);
            Assert.Equal(6, Exposition.Parse(body).Value("konfiscator_malloc_total", ("command", "web")));
            Assert.DoesNotContain("# EOF", body);
        }
    }

    [Theory]
    [InlineData("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", true)]
    [InlineData("application/openmetrics-text", true)]
    [InlineData("text/plain", false)]
    [InlineData("*/*", false)]
    [InlineData("text/plain;q=1, application/openmetrics-text;q=0.5", false)]
    [InlineData("application/openmetrics-text;q=0", false)]
    public void Accept_header_negotiation(string accept, bool openMetrics) =>
        Assert.Equal(openMetrics, MetricsServer.WantsOpenMetrics(accept));

    [Fact]
    public async Task OpenMetrics_is_served_when_the_scraper_asks()
    {
        var (server, dir, p) = await StartAsync();
        await using (server)
        using (dir)
        using (p)
        {
            var (type, body) = await Net.ScrapeAsync(server.MetricsUrl,
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
            Assert.StartsWith("application/openmetrics-text", type);
            Assert.EndsWith("# EOF\n", body);
            Assert.Contains("# TYPE konfiscator_malloc counter", body);
        }
    }

    [Fact]
    public async Task Other_paths_are_404_and_the_root_links_to_metrics()
    {
        var (server, dir, p) = await StartAsync();
        await using (server)
        using (dir)
        using (p)
        {
            var root = new Uri(server.MetricsUrl, "/");
            Assert.Contains("/metrics", await Net.Http.GetStringAsync(root));
            var missing = await Net.Http.GetAsync(new Uri(server.MetricsUrl, "/nope"));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            var post = await Net.Http.PostAsync(server.MetricsUrl, new StringContent(""));
            Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        }
    }

    [Fact]
    public async Task A_port_in_use_is_a_clear_error()
    {
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            using var dir = new TempDir();
            var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);
            ListenAddress.TryParse($"127.0.0.1:{port}", out var listen, out _);
            var e = await Assert.ThrowsAsync<ToolException>(() => MetricsServer.StartAsync(listen!, metrics, dir.Path));
            Assert.Contains("address already in use", e.Message);
            Assert.Contains($"127.0.0.1:{port}", e.Message);
        }
        finally
        {
            taken.Stop();
        }
    }

    [Theory]
    [InlineData(":8000", null, false, 8000)]
    [InlineData("8000", null, false, 8000)]
    [InlineData("*:9", null, false, 9)]
    [InlineData("127.0.0.1:0", "127.0.0.1", false, 0)]
    [InlineData("0.0.0.0:8000", "0.0.0.0", false, 8000)]
    [InlineData("[::1]:8000", "::1", false, 8000)]
    [InlineData("localhost:8000", null, true, 8000)]
    public void Listen_addresses(string text, string? ip, bool localhost, int port)
    {
        Assert.True(ListenAddress.TryParse(text, out var a, out string error), error);
        Assert.Equal(ip, a!.Address?.ToString());
        Assert.Equal(localhost, a.Localhost);
        Assert.Equal(port, a.Port);
    }

    [Theory]
    [InlineData("")]
    [InlineData("nonsense")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("::1:80")]
    [InlineData("example.com:80")]
    [InlineData("[::1]80")]
    public void Bad_listen_addresses(string text)
    {
        Assert.False(ListenAddress.TryParse(text, out _, out string error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}
