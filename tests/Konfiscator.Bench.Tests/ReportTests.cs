using System.Text.Json;
using System.Xml.Linq;
using Konfiscator.Bench;
using Konfiscator.Bench.Reports;

namespace Konfiscator.Bench.Tests;

public class ReportTests
{
    private readonly BenchResults _results = Synthetic.Results();

    [Fact]
    public void Markdown_has_the_tables_failures_and_missing_allocators()
    {
        string md = MarkdownReport.Write(_results);
        Assert.Contains("| workload | glibc | konfiscator | jemalloc |", md);
        Assert.Contains("**geometric mean**", md);
        Assert.Contains("not installed", md);
        Assert.Contains("1/3 failed", md);
        Assert.Contains("peak RSS / peak live bytes", md);
        Assert.Contains("SIGSEGV", md);
        // The rounds' spread: fifo under konfiscator ran at 0.51x to 0.53x of glibc's run of its round.
        Assert.Contains("### Round by round", md);
        Assert.Contains("| small FIFO | — | 0.51–0.53 | — |", md);
    }

    [Fact]
    public void Json_parses_and_carries_every_cell()
    {
        using var doc = JsonDocument.Parse(JsonReport.Write(_results));
        var root = doc.RootElement;
        Assert.Equal(JsonReport.Schema, root.GetProperty("schema").GetString());
        Assert.Equal(_results.Cells.Count, root.GetProperty("results").GetArrayLength());
        var jemalloc = root.GetProperty("allocators").EnumerateArray().Single(a => a.GetProperty("name").GetString() == "jemalloc");
        Assert.False(jemalloc.GetProperty("installed").GetBoolean());
        var fifo = root.GetProperty("results").EnumerateArray()
            .Single(c => c.GetProperty("workload").GetString() == "fifo" && c.GetProperty("allocator").GetString() == "konfiscator");
        Assert.Equal(0.27 / 0.52, fifo.GetProperty("time_ratio_to_glibc").GetDouble(), 9);
        Assert.Equal(0.26 / 0.51, fifo.GetProperty("round_time_ratio_low").GetDouble(), 9);
        Assert.Equal(0.28 / 0.53, fifo.GetProperty("round_time_ratio_high").GetDouble(), 9);
        Assert.Equal(3, fifo.GetProperty("samples").GetArrayLength());
    }

    [Fact]
    public void Svg_is_well_formed_and_has_a_bar_per_result()
    {
        var svg = XDocument.Parse(SvgChart.Write(_results));
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(ns + "svg", svg.Root!.Name);
        var texts = svg.Descendants(ns + "text").Select(t => t.Value).ToList();
        Assert.Contains("jemalloc (not installed)", texts);
        Assert.Contains(texts, t => t.Contains("Wall time", StringComparison.Ordinal));
        // konfiscator has bars in both panels: 4 workloads + the mean, twice.
        int bars = svg.Descendants(ns + "rect").Count(r => (string?)r.Attribute("fill") == "#d62728" && r.Element(ns + "title") is not null);
        Assert.Equal(10, bars);
    }

    [Fact]
    public async Task All_three_files_are_written()
    {
        string dir = Path.Combine(Path.GetTempPath(), "kbench-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var paths = await ReportFiles.WriteAllAsync(_results, dir);
            Assert.True(File.Exists(paths.Markdown));
            Assert.True(File.Exists(paths.Json));
            Assert.True(File.Exists(paths.Svg));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
