using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The exporter listens on every interface by default (:8000, as the seed did). The help
/// says so and names the safer loopback address; --web.listen-address, the name Prometheus
/// exporters use, is accepted as --listen.</summary>
public class ListenDefaultTests
{
    [Theory]
    [InlineData("exporter"), InlineData("run")]
    public async Task Help_says_the_default_listens_on_every_interface(string verb)
    {
        var (code, stdout, _) = await ToolProcess.RunAsync([verb, "--help"]);
        Assert.Equal(0, code);
        Assert.Contains("--web.listen-address", stdout);
        Assert.Contains("EVERY interface", stdout);
        Assert.Contains("127.0.0.1:8000", stdout);
    }

    [Theory]
    [InlineData("--listen"), InlineData("--web.listen-address")]
    public async Task A_loopback_address_serves_on_loopback_only(string option)
    {
        using var dir = new TempDir();
        using var exporter = ToolProcess.Start(["exporter", option, "127.0.0.1:0", "--stats-dir", dir.Path]);
        var url = await exporter.WaitForMetricsUrlAsync();
        Assert.Equal("127.0.0.1", url.Host);
        var (_, body) = await Net.ScrapeAsync(url);
        Assert.Contains("konfiscator_exporter_read_errors_total", body);
        // Not reachable through this host's other addresses.
        var others = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(a));
        foreach (var address in others)
        {
            using var client = new System.Net.Sockets.TcpClient();
            await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => client.ConnectAsync(address, url.Port));
        }
    }
}
