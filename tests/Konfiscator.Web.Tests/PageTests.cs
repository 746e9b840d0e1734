using System.Diagnostics;
using System.Globalization;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Konfiscator.Web.Tests;

/// <summary>The exporter's page at / in a real browser, with a preloaded test program (kheap) and
/// synthetic segments of real sleep processes (a hostile name, two hundred processes).</summary>
public class PageTests(ITestOutputHelper output)
{
    /// <summary>Under the 63 bytes a segment keeps of a command name.</summary>
    private const string Hostile = "<img src=x onerror=window.pwned=1><script>pwned=2</script>";

    [Fact]
    public async Task The_page_lists_a_program_moves_its_chart_draws_its_heap_and_shows_hostile_names_as_text()
    {
        ArtifactsCheck.RequireBuilt();
        using var stats = new TempDir("stats");
        // Sampled with a 4 KiB mean, so its megabytes surely have live samples (a flame graph).
        using var heap = await KHeap.StartAsync(stats.Path, threadCaches: true,
            environment: new Dictionary<string, string> { ["KONFISCATOR_SAMPLE_BYTES"] = "4096" });
        using var hostile = new Sleeper();
        SegmentBuilder.For(hostile, Hostile).Requests(0, StatsLayout.MallocCalls, 64, 3).WriteTo(stats.Path);
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
        var root = new Uri(await exporter.WaitForMetricsUrlAsync(), "/");

        var (playwright, browser) = await Browser.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
            var errors = new List<string>();
            page.PageError += (_, e) => errors.Add(e);
            page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
            string pid = heap.Process.Id.ToString(CultureInfo.InvariantCulture);
            await page.GotoAsync(new Uri(root, "/#" + pid).ToString());

            // The program is listed, with its command.
            var row = page.Locator($"#processes tr[data-pid=\"{pid}\"]");
            await row.WaitForAsync();
            Assert.Equal("kheap", await row.Locator("td.cmd").TextContentAsync());

            // Its in-use chart moves between two sync points (8 MiB more after go1).
            await page.WaitForFunctionAsync("() => { const c = document.querySelector('#inuse'); return c && Number(c.dataset.points) >= 2; }",
                null, new PageWaitForFunctionOptions { Timeout = 30_000 });
            double before = double.Parse((await page.Locator("#inuse").GetAttributeAsync("data-last"))!, CultureInfo.InvariantCulture);
            Assert.True(before > 1 << 20, $"in use before: {before}");
            heap.Go("go1");
            await heap.WaitForAsync("ready2");
            await page.WaitForFunctionAsync($"() => Number(document.querySelector('#inuse').dataset.last) >= {before + (8 << 20)}",
                null, new PageWaitForFunctionOptions { Timeout = 30_000 });
            var line = page.Locator("#inuse polyline[data-series=\"in use\"]");
            Assert.True((await line.GetAttributeAsync("points"))!.Split(' ').Length >= 2);

            // The heap map shows the program's regions (those of the arena its thread uses, at least).
            await page.Locator("#heapmap g.region").First.WaitForAsync();
            var shown = await page.Locator("#heapmap g.region").EvaluateAllAsync<string[]>("gs => gs.map(g => g.dataset.start)");
            foreach (var (start, _) in heap.Regions())
                Assert.Contains($"0x{start:x}", shown);
            Assert.True(await page.Locator("#heapmap rect").CountAsync() > 16);

            // The allocation-site flame graph: an SVG of frames (rect), with the program's main among them.
            await page.Locator("#flame svg").WaitForAsync();
            Assert.True(await page.Locator("#flame svg rect").CountAsync() > 2);
            Assert.Contains("main", await page.Locator("#flame svg").TextContentAsync());

            if (Browser.ScreenshotPath("web-page.png") is { } shot)
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = false });

            // The hostile name is text: listed as it is, nothing of it ran or became an element.
            var bad = page.Locator($"#processes tr[data-pid=\"{hostile.Pid}\"] td.cmd");
            Assert.Equal(Hostile, await bad.TextContentAsync());
            await page.GotoAsync(new Uri(root, "/#" + hostile.Pid.ToString(CultureInfo.InvariantCulture)).ToString());
            // Only the address's hash changes: wait for the refresh that draws the chosen process.
            await page.WaitForFunctionAsync($"() => (document.querySelector('#title') || {{}}).textContent?.endsWith('(pid {hostile.Pid})')",
                null, new PageWaitForFunctionOptions { Timeout = 30_000 });
            Assert.Equal($"{Hostile} (pid {hostile.Pid})", await page.Locator("#title").TextContentAsync());
            await page.Locator("#inuse").WaitForAsync();
            // No sample tables in the synthetic segment: the note, no flame graph.
            await page.Locator("#flame-none").WaitForAsync();
            Assert.Contains("No allocation samples", await page.Locator("#flame-none").TextContentAsync());
            Assert.Equal("undefined", await page.EvaluateAsync<string>("() => typeof window.pwned"));
            Assert.Equal(0, await page.Locator("img").CountAsync());
            Assert.Equal(1, await page.Locator("script").CountAsync());
            Assert.Empty(errors);
        }
        heap.Go("go2");
        exporter.Signal(2);
        Assert.Equal(0, await exporter.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>Two hundred live processes: the list shows every one. How long the page took is
    /// written to the test output (speed is not asserted on a shared machine).</summary>
    [Fact]
    public async Task Two_hundred_processes_are_all_listed()
    {
        ArtifactsCheck.RequireBuilt();
        using var stats = new TempDir("stats");
        var sleepers = new List<Sleeper>();
        try
        {
            for (int i = 0; i < 200; i++)
            {
                var s = new Sleeper();
                sleepers.Add(s);
                SegmentBuilder.For(s, $"proc{i:000}").Requests(0, StatsLayout.MallocCalls, 32, (ulong)i + 1)
                    .Thread(0, StatsLayout.BytesInUse, (ulong)(i + 1) << 10).WriteTo(stats.Path);
            }
            using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", stats.Path], tool: Artifacts.Tool);
            var root = new Uri(await exporter.WaitForMetricsUrlAsync(), "/");
            var (playwright, browser) = await Browser.LaunchAsync();
            using (playwright)
            await using (browser)
            {
                var page = await browser.NewPageAsync();
                // Twice: the first load also warms up the browser and the tool (JIT); the second is what a user sees.
                foreach (string load in new[] { "first", "second" })
                {
                    var clock = Stopwatch.StartNew();
                    await page.GotoAsync(root.ToString());
                    await page.WaitForFunctionAsync("() => document.querySelectorAll('#processes tr').length >= 200",
                        null, new PageWaitForFunctionOptions { Timeout = 30_000, PollingInterval = 10 });
                    output.WriteLine($"{load} load: 200 processes listed {clock.ElapsedMilliseconds} ms after navigation started");
                }
                var names = await page.Locator("#processes td.cmd").AllTextContentsAsync();
                Assert.Equal(Enumerable.Range(0, 200).Select(i => $"proc{i:000}").Order(), names.Order());
            }
            exporter.Signal(2);
            await exporter.WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            foreach (var s in sleepers) s.Dispose();
        }
    }
}
