using System.Globalization;
using System.Net;
using System.Text.Json;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The exporter's page and its JSON endpoints (docs/web.md), over real HTTP on 127.0.0.1,
/// with a preloaded program and synthetic segments (hostile names among them).</summary>
public class WebApiTests
{
    public WebApiTests() => ArtifactsCheck.RequireBuilt();

    private const string Hostile = "<script>alert(1)</script>\"'&";

    [ArtifactsFact]
    public async Task Processes_and_one_process_as_json_with_history_and_heap_map()
    {
        using var stats = new TempDir("stats");
        using var heap = await KHeap.StartAsync(stats.Path);
        using var hostile = new Sleeper();
        SegmentBuilder.For(hostile, Hostile).Requests(0, StatsLayout.MallocCalls, 64, 3).WriteTo(stats.Path);
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
        var metrics = await exporter.WaitForMetricsUrlAsync();
        var root = new Uri(metrics, "/");

        // The page: self-contained, no address elsewhere.
        var page = await Net.Http.GetAsync(root);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.StartsWith("text/html", page.Content.Headers.ContentType!.ToString());
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("/api/processes", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""), StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);

        // The list.
        string list = await Net.Http.GetStringAsync(new Uri(root, "/api/processes"));
        Assert.DoesNotContain("<script>", list, StringComparison.Ordinal); // escaped in JSON as well
        using (var json = JsonDocument.Parse(list))
        {
            var processes = json.RootElement.GetProperty("processes").EnumerateArray().ToList();
            var mine = processes.Single(p => p.GetProperty("pid").GetInt32() == heap.Process.Id);
            Assert.Equal("kheap", mine.GetProperty("command").GetString());
            Assert.True(mine.GetProperty("in_use_bytes").GetUInt64() > 1 << 20);
            var bad = processes.Single(p => p.GetProperty("pid").GetInt32() == hostile.Pid);
            Assert.Equal(Hostile, bad.GetProperty("command").GetString());
        }

        // One process: figures, history, the heap map as the library publishes it.
        string pid = heap.Process.Id.ToString(CultureInfo.InvariantCulture);
        using (var json = JsonDocument.Parse(await Net.Http.GetStringAsync(new Uri(root, $"/api/process/{pid}"))))
        {
            var p = json.RootElement;
            Assert.Equal(heap.Process.Id, p.GetProperty("pid").GetInt32());
            Assert.True(p.GetProperty("figures").GetProperty("malloc_total").GetUInt64() >= 1000);
            Assert.Equal(StatsLayout.HistogramBuckets, p.GetProperty("request_size_buckets").GetArrayLength());
            var history = p.GetProperty("history");
            Assert.True(history.GetProperty("seconds").GetArrayLength() >= 1);
            Assert.Equal(history.GetProperty("seconds").GetArrayLength(), history.GetProperty("in_use_bytes").GetArrayLength());
            var regions = p.GetProperty("heap_map").GetProperty("arenas").EnumerateArray()
                .SelectMany(a => a.GetProperty("regions").EnumerateArray()).Select(r => r.GetProperty("start").GetString()).ToList();
            Assert.Equal(heap.Regions().Select(r => $"0x{r.Start:x}"), regions);
        }

        // The charts, drawn on the server, with names escaped.
        foreach (string chart in new[] { "in-use", "calls", "sizes", "heap" })
        {
            var svg = await Net.Http.GetAsync(new Uri(root, $"/svg/{pid}/{chart}.svg"));
            Assert.Equal(HttpStatusCode.OK, svg.StatusCode);
            Assert.Equal("image/svg+xml", svg.Content.Headers.ContentType!.MediaType);
            System.Xml.Linq.XDocument.Parse(await svg.Content.ReadAsStringAsync()); // well-formed
        }
        string hostileHeap = await Net.Http.GetStringAsync(new Uri(root, $"/svg/{hostile.Pid}/in-use.svg"));
        System.Xml.Linq.XDocument.Parse(hostileHeap);

        // Unknown or malformed: 404, never an error page.
        foreach (string path in new[] { "/api/process/999999", "/api/process/abc", "/api/process/-1", "/svg/999999/heap.svg", $"/svg/{pid}/nope.svg" })
            Assert.Equal(HttpStatusCode.NotFound, (await Net.Http.GetAsync(new Uri(root, path))).StatusCode);

        exporter.Signal(2);
        Assert.Equal(0, await exporter.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        heap.Go("go1");
        heap.Go("go2");
    }
}
