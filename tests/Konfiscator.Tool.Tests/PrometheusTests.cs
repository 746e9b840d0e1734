using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>Debian's Prometheus tools against the exporter: promtool accepts its output, and a real
/// Prometheus server scrapes it (negotiating OpenMetrics) and answers queries with its figures.</summary>
public class PrometheusTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Promtool_accepts_the_exporter_output(bool perPid)
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        using var b = new Sleeper();
        SegmentBuilder.For(a, "checked").Requests(0, StatsLayout.MallocCalls, 3, 5).Requests(1, StatsLayout.CallocCalls, 1UL << 40, 1)
            .Thread(0, StatsLayout.BytesInUse, 77).WriteTo(dir.Path);
        SegmentBuilder.For(b, "checked").Requests(0, StatsLayout.MallocCalls, 3, 5).WriteTo(dir.Path);
        File.WriteAllBytes(dir.File("31337.kstats"), new byte[3]);

        var args = new List<string> { "exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path };
        if (perPid) args.Add("--per-pid");
        using var exporter = ToolProcess.Start(args);
        var url = await exporter.WaitForMetricsUrlAsync();
        b.End(); // so that per-pid output also has the pid="" series of ended processes
        var (_, body) = await Net.ScrapeAsync(url);
        (_, body) = await Net.ScrapeAsync(url);
        Assert.Contains("konfiscator_request_size_bytes_bucket", body);

        var (code, output) = await Promtool.CheckMetricsAsync(body);
        Assert.True(code == 0, $"promtool check metrics failed:\n{output}\n---\n{body}");
        Assert.Equal("", output.Trim());
    }

    [Fact]
    public async Task A_real_prometheus_scrapes_the_exporter_and_finds_the_figures()
    {
        using var dir = new TempDir();
        using var p = new Sleeper(120);
        var segment = SegmentBuilder.For(p, "promtest")
            .Requests(0, StatsLayout.MallocCalls, 24, 1234)
            .Requests(1, StatsLayout.PosixMemalignCalls, 4096, 10)
            .Thread(0, StatsLayout.BytesInUse, 5000);
        segment.WriteTo(dir.Path);
        using var exporter = ToolProcess.Start(["exporter", "--listen", "127.0.0.1:0", "--stats-dir", dir.Path]);
        var url = await exporter.WaitForMetricsUrlAsync();

        using var prometheus = PrometheusServer.Start(url);
        double malloc = await prometheus.WaitForAsync("konfiscator_malloc_total{command=\"promtest\"}", v => v == 1234);
        Assert.Equal(1234, malloc);
        Assert.Equal(10, await prometheus.WaitForAsync("konfiscator_posix_memalign_total{command=\"promtest\"}", v => v == 10));
        Assert.Equal(5000, await prometheus.WaitForAsync("konfiscator_in_use_bytes{command=\"promtest\"}", v => v == 5000));
        // The histogram arrives as a histogram: buckets, count and sum.
        Assert.Equal(1244, await prometheus.WaitForAsync("konfiscator_request_size_bytes_count{command=\"promtest\"}", v => v == 1244));
        Assert.Equal(1234, await prometheus.WaitForAsync(
            "konfiscator_request_size_bytes_bucket{command=\"promtest\",le=~\"32(\\\\.0)?\"}", v => v == 1234));
        double median = await prometheus.WaitForAsync(
            "histogram_quantile(0.5, konfiscator_request_size_bytes_bucket{command=\"promtest\"})", v => v > 0);
        Assert.InRange(median, 16, 32);

        // The process counts on, then ends: the group's counter keeps its final value.
        segment.Requests(0, StatsLayout.MallocCalls, 24, 66).WriteTo(dir.Path);
        p.End();
        Assert.Equal(1300, await prometheus.WaitForAsync("konfiscator_malloc_total{command=\"promtest\"}", v => v == 1300));
        Assert.Equal(0, await prometheus.WaitForAsync("konfiscator_processes{command=\"promtest\"}", v => v == 0));
        Assert.StartsWith("up", await prometheus.TargetHealthAsync());
    }
}
