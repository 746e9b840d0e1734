using System.Net;
using System.Net.Sockets;

namespace Konfiscator.Tool.Tests.Support;

internal static class Net
{
    public static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>A port that was free a moment ago on 127.0.0.1.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static async Task<(string ContentType, string Body)> ScrapeAsync(Uri url, string? accept = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (accept is not null) request.Headers.TryAddWithoutValidation("Accept", accept);
        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (response.Content.Headers.ContentType?.ToString() ?? "", await response.Content.ReadAsStringAsync());
    }

    /// <summary>Scrapes until <paramref name="condition"/> holds (bounded).</summary>
    public static async Task<Exposition> ScrapeUntilAsync(Uri url, Func<Exposition, bool> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        Exposition? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = Exposition.Parse((await ScrapeAsync(url)).Body);
            if (condition(last)) return last;
            await Task.Delay(100);
        }
        throw new Xunit.Sdk.XunitException($"condition not met at {url}; last scrape:\n{last?.Text}");
    }
}
