using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Xml.Linq;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The allocation sites in the views of issue 12: <c>top</c>'s "top allocation sites"
/// lines and the web page's flame graph (/api/process/{pid}/flame.svg), with native/ksites.c (three
/// sites of 100, 10 and 1 MiB, sampled with a 2 KiB mean as in ProfileTests) beside kheap with
/// sampling off (then: one line in top, a 404 with the reason on the web).</summary>
public class SampledViewsTests
{
    private static readonly string[] SiteOrder = ["site_hundred_mib", "site_ten_mib", "site_one_mib"];

    public SampledViewsTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public async Task Top_and_the_web_flame_graph_show_the_sampled_sites_and_say_when_there_are_none()
    {
        using var work = new TempDir("sites");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("ksites.c", work.Path, "-O0", "-fno-inline");
        using var sites = ProfileTests.StartPreloaded(program, work.Path, stats.Path);
        using var unsampled = await KHeap.StartAsync(stats.Path, environment: new Dictionary<string, string> { ["KONFISCATOR_SAMPLE_BYTES"] = "0" });
        try
        {
            await ProfileTests.WaitForFileAsync(work.File("ready"), sites);
            string pid = sites.Id.ToString(CultureInfo.InvariantCulture);
            string quiet = unsampled.Process.Id.ToString(CultureInfo.InvariantCulture);

            // top --once: the three sites in order of bytes in use, one line each, within 80 columns.
            var (code, frame, stderr) = await Tool("top", "-p", pid, "--once", "--interval", "0.2", "--stats-dir", stats.Path);
            Assert.True(code == 0, stderr);
            var lines = frame.Split('\n');
            int heading = Array.FindIndex(lines, l => l.StartsWith("top allocation sites", StringComparison.Ordinal));
            Assert.True(heading >= 0, frame);
            var shown = lines.Skip(heading + 1).TakeWhile(l => l.Length > 0)
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]).ToArray();
            Assert.True(shown.Length <= 5, frame);
            Assert.Equal(SiteOrder, shown.Where(s => s.StartsWith("site_", StringComparison.Ordinal)).ToArray());
            Assert.Equal("site_hundred_mib", shown[0]);
            Assert.All(lines, l => Assert.True(l.Length <= 80, $"longer than 80 columns: {l}"));

            // Sampling off: one line that says so, no table.
            (code, frame, stderr) = await Tool("top", "-p", quiet, "--once", "--interval", "0.2", "--stats-dir", stats.Path);
            Assert.True(code == 0, stderr);
            Assert.Contains("allocation sites: sampling off", frame);
            Assert.DoesNotContain("top allocation sites", frame);

            // The web page's flame graph: well-formed SVG naming the three sites; 404s with a reason otherwise.
            using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
            var root = new Uri(await exporter.WaitForMetricsUrlAsync(), "/");
            var flame = await Net.Http.GetAsync(new Uri(root, $"/api/process/{pid}/flame.svg"));
            string body = await flame.Content.ReadAsStringAsync();
            Assert.True(flame.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal("image/svg+xml", flame.Content.Headers.ContentType!.MediaType);
            var svg = XDocument.Parse(body); // well-formed
            string text = string.Join('\n', svg.Descendants().Where(e => e.Name.LocalName is "text" or "title").Select(e => e.Value));
            foreach (string site in SiteOrder) Assert.Contains(site, text);

            // The process's JSON says whether there is a flame graph (the page asks for it only then).
            using (var json = JsonDocument.Parse(await Net.Http.GetStringAsync(new Uri(root, $"/api/process/{pid}"))))
            {
                Assert.True(json.RootElement.GetProperty("sampling").GetProperty("on").GetBoolean());
                Assert.True(json.RootElement.GetProperty("sampling").GetProperty("live_samples").GetInt32() > 1000);
            }
            using (var json = JsonDocument.Parse(await Net.Http.GetStringAsync(new Uri(root, $"/api/process/{quiet}"))))
            {
                Assert.False(json.RootElement.GetProperty("sampling").GetProperty("on").GetBoolean());
                Assert.StartsWith("off", json.RootElement.GetProperty("sampling").GetProperty("state").GetString());
            }

            var none = await Net.Http.GetAsync(new Uri(root, $"/api/process/{quiet}/flame.svg"));
            Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
            using (var json = JsonDocument.Parse(await none.Content.ReadAsStringAsync()))
                Assert.Contains("sampling off", json.RootElement.GetProperty("error").GetString());
            foreach (string path in new[] { "/api/process/999999/flame.svg", "/api/process/x/flame.svg" })
                Assert.Equal(HttpStatusCode.NotFound, (await Net.Http.GetAsync(new Uri(root, path))).StatusCode);

            exporter.Signal(2);
            Assert.Equal(0, await exporter.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            File.Create(work.File("go")).Dispose();
            Assert.True(sites.WaitForExit(30_000));
            Assert.Equal(0, sites.ExitCode);
        }
        finally
        {
            if (!sites.HasExited) sites.Kill();
            unsampled.Go("go1");
            unsampled.Go("go2");
        }
    }

    /// <summary>native/khostile.c: its one site's symbol is markup with quotes, an ampersand and a
    /// control character. The flame graph stays well-formed XML and holds the name as text (the
    /// control as '?'); top prints it as text too.</summary>
    [ArtifactsFact]
    public async Task A_hostile_function_name_is_text_in_the_flame_graph_and_in_top()
    {
        const string Shown = "<script>alert(1)</script>&'?site";
        using var work = new TempDir("hostile");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("khostile.c", work.Path, "-O0", "-fno-inline");
        using var process = ProfileTests.StartPreloaded(program, work.Path, stats.Path);
        try
        {
            await ProfileTests.WaitForFileAsync(work.File("ready"), process);
            string pid = process.Id.ToString(CultureInfo.InvariantCulture);

            var (code, frame, stderr) = await Tool("top", "-p", pid, "--once", "--interval", "0.2", "--stats-dir", stats.Path);
            Assert.True(code == 0, stderr);
            Assert.Contains("  " + Shown, frame);
            Assert.DoesNotContain("\u0001", frame, StringComparison.Ordinal);

            using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
            var root = new Uri(await exporter.WaitForMetricsUrlAsync(), "/");
            var flame = await Net.Http.GetAsync(new Uri(root, $"/api/process/{pid}/flame.svg"));
            string body = await flame.Content.ReadAsStringAsync();
            Assert.True(flame.StatusCode == HttpStatusCode.OK, body);
            Assert.DoesNotContain("<script>", body, StringComparison.Ordinal);
            var svg = XDocument.Parse(body);
            Assert.DoesNotContain(svg.Descendants(), e => e.Name.LocalName == "script");
            Assert.Contains(svg.Descendants().Where(e => e.Name.LocalName == "title"), t => t.Value.StartsWith(Shown + " (", StringComparison.Ordinal));

            exporter.Signal(2);
            Assert.Equal(0, await exporter.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            File.Create(work.File("go")).Dispose();
            Assert.True(process.WaitForExit(30_000));
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    private static async Task<(int Code, string Stdout, string Stderr)> Tool(params string[] args)
    {
        using var tool = ToolProcess.Start(args, tool: Artifacts.Tool);
        int code = await tool.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (code, tool.Stdout, tool.Stderr);
    }
}
