using System.Globalization;
using CsCheck;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Metrics;
using Konfiscator.Tool.Tests.Support;
using Prometheus;
using Collector = Konfiscator.Reader.Collector;

namespace Konfiscator.Tool.Tests;

public class MetricsTests
{
    private static readonly string[] CounterNames =
    [
        "konfiscator_malloc_total", "konfiscator_free_total", "konfiscator_mmap_total", "konfiscator_defrag_total",
        "konfiscator_calloc_total", "konfiscator_realloc_total", "konfiscator_reallocarray_total", "konfiscator_memalign_total",
        "konfiscator_posix_memalign_total", "konfiscator_aligned_alloc_total", "konfiscator_valloc_total", "konfiscator_pvalloc_total",
        "konfiscator_malloc_usable_size_total", "konfiscator_cfree_total", "konfiscator_munmap_total",
        "konfiscator_failed_allocations_total", "konfiscator_allocated_bytes_total", "konfiscator_freed_bytes_total",
        "konfiscator_exited_processes_total", "konfiscator_exporter_read_errors_total", "konfiscator_exporter_scan_errors_total",
        "konfiscator_cache_refill_blocks_total", "konfiscator_cache_return_blocks_total",
    ];

    private static readonly string[] GaugeNames =
    [
        "konfiscator_in_use_bytes", "konfiscator_peak_in_use_bytes", "konfiscator_mapped_bytes", "konfiscator_free_bytes",
        "konfiscator_free_blocks", "konfiscator_largest_free_block_bytes", "konfiscator_processes", "konfiscator_cached_bytes",
        "konfiscator_fragmentation_ratio", "konfiscator_mapped_to_in_use_ratio", "konfiscator_build_info",
    ];

    [Fact]
    public async Task Every_figure_has_its_name_type_and_help()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "demo").Requests(0, StatsLayout.MallocCalls, 24, 1).WriteTo(dir.Path);
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);
        var e = await Exposition.FromRegistryAsync(metrics.Registry);

        foreach (string name in CounterNames) Assert.Equal("counter", e.Types[name]);
        foreach (string name in GaugeNames) Assert.Equal("gauge", e.Types[name]);
        Assert.Equal("histogram", e.Types["konfiscator_request_size_bytes"]);
        foreach (var (name, help) in e.Help) Assert.False(string.IsNullOrWhiteSpace(help), name);
        Assert.Equal(CounterNames.Length + GaugeNames.Length + 1, e.Types.Count);
        // Nothing but our own families: the tool's process metrics stay out.
        Assert.All(e.Samples, s => Assert.StartsWith("konfiscator_", s.Name));
    }

    [Fact]
    public async Task Peak_is_never_below_in_use_and_the_ratios_follow_their_definitions()
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        // Small allocations whose growth the library has not yet reported to the peak: peak 0.
        SegmentBuilder.For(a, "small").Requests(0, StatsLayout.MallocCalls, 4, 50).Thread(0, StatsLayout.BytesInUse, 800)
            .Process(StatsLayout.BytesMapped, 4000)
            .Arena(0, StatsLayout.FreeBytes, 1000).Arena(0, StatsLayout.LargestFreeBlock, 600).WriteTo(dir.Path);
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);
        var e = await Exposition.FromRegistryAsync(metrics.Registry);
        var small = ("command", "small");
        Assert.Equal(800, e.Value("konfiscator_in_use_bytes", small));
        Assert.Equal(800, e.Value("konfiscator_peak_in_use_bytes", small));
        Assert.Equal(1 - 600.0 / 1000, e.Value("konfiscator_fragmentation_ratio", small)!.Value, 9);
        Assert.Equal(4000.0 / 800, e.Value("konfiscator_mapped_to_in_use_ratio", small)!.Value, 9);

        var (version, _) = BuildInfo.Get();
        Assert.Matches(@"^\d+\.\d+\.\d+", version);
        Assert.Equal(1, e.Value("konfiscator_build_info", ("version", version)));
    }

    [Fact]
    public async Task Run_keeps_the_gauges_a_command_ended_with()
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        var seg = SegmentBuilder.For(a, "job").Requests(0, StatsLayout.MallocCalls, 100, 5).Thread(0, StatsLayout.BytesInUse, 640)
            .Process(StatsLayout.BytesMapped, 1 << 20).Process(StatsLayout.PeakBytesInUse, 4096);
        seg.WriteTo(dir.Path);
        var kept = new KonfiscatorMetrics(new Collector(dir.Path, new CollectorOptions { RemoveCollected = false }), perPid: false, keepEndedGauges: true);
        var dropped = new KonfiscatorMetrics(new Collector(dir.Path, new CollectorOptions { RemoveCollected = false }), perPid: false);
        await Exposition.FromRegistryAsync(kept.Registry);
        await Exposition.FromRegistryAsync(dropped.Registry);

        // Its last writes happen after the last collection while it ran.
        seg.Thread(0, StatsLayout.BytesInUse, 320).WriteTo(dir.Path);
        a.End();
        var job = ("command", "job");
        var e = await Exposition.FromRegistryAsync(kept.Registry);
        Assert.Equal(0, e.Value("konfiscator_processes", job));
        Assert.Equal(320, e.Value("konfiscator_in_use_bytes", job));
        Assert.Equal(1 << 20, e.Value("konfiscator_mapped_bytes", job));
        Assert.Equal(4096, e.Value("konfiscator_peak_in_use_bytes", job));
        Assert.Equal((1 << 20) / 320.0, e.Value("konfiscator_mapped_to_in_use_ratio", job)!.Value, 9);
        e = await Exposition.FromRegistryAsync(dropped.Registry);
        Assert.Null(e.Value("konfiscator_in_use_bytes", job));
    }

    [Fact]
    public async Task Group_series_follow_the_segments_and_counters_never_go_down()
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        var seg = SegmentBuilder.For(a, "demo")
            .Requests(0, StatsLayout.MallocCalls, 24, 10)
            .Thread(0, StatsLayout.FreeCalls, 4).Thread(0, StatsLayout.BytesInUse, 192)
            .Arena(0, StatsLayout.Coalesces, 2).Process(StatsLayout.MmapCalls, 1).Process(StatsLayout.PeakBytesInUse, 500);
        seg.WriteTo(dir.Path);
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);

        var e = await Exposition.FromRegistryAsync(metrics.Registry);
        var demo = ("command", "demo");
        Assert.Equal(10, e.Value("konfiscator_malloc_total", demo));
        Assert.Equal(4, e.Value("konfiscator_free_total", demo));
        Assert.Equal(2, e.Value("konfiscator_defrag_total", demo));
        Assert.Equal(1, e.Value("konfiscator_mmap_total", demo));
        Assert.Equal(192, e.Value("konfiscator_in_use_bytes", demo));
        Assert.Equal(500, e.Value("konfiscator_peak_in_use_bytes", demo));
        Assert.Equal(1, e.Value("konfiscator_processes", demo));
        Assert.Equal(10, e.Value("konfiscator_request_size_bytes_count", demo));
        Assert.Equal(240, e.Value("konfiscator_request_size_bytes_sum", demo));
        Assert.Equal(0, e.Value("konfiscator_request_size_bytes_bucket", demo, ("le", "16")));
        Assert.Equal(10, e.Value("konfiscator_request_size_bytes_bucket", demo, ("le", "32")));
        Assert.Equal(10, e.Value("konfiscator_request_size_bytes_bucket", demo, ("le", "+Inf")));
        Assert.Null(e.Value("konfiscator_malloc_total", ("pid", a.Pid.ToString(CultureInfo.InvariantCulture))));

        // A torn or bogus reading lower than before never makes a counter go down.
        seg.Thread(0, StatsLayout.MallocCalls, 3).WriteTo(dir.Path);
        e = await Exposition.FromRegistryAsync(metrics.Registry);
        Assert.Equal(10, e.Value("konfiscator_malloc_total", demo));

        // The process ends: counters stay, gauges go, processes drops to 0.
        seg.Thread(0, StatsLayout.MallocCalls, 12).WriteTo(dir.Path);
        a.End();
        e = await Exposition.FromRegistryAsync(metrics.Registry);
        Assert.Equal(12, e.Value("konfiscator_malloc_total", demo));
        Assert.Equal(0, e.Value("konfiscator_processes", demo));
        Assert.Equal(1, e.Value("konfiscator_exited_processes_total", demo));
        Assert.Null(e.Value("konfiscator_in_use_bytes", demo));
        Assert.Null(e.Value("konfiscator_peak_in_use_bytes", demo));
        Assert.Equal(10, e.Value("konfiscator_request_size_bytes_count", demo));
    }

    [Fact]
    public async Task Per_pid_series_appear_and_disappear_with_their_processes()
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        using var b = new Sleeper();
        SegmentBuilder.For(a, "job").Requests(0, StatsLayout.MallocCalls, 100, 5).Thread(0, StatsLayout.BytesInUse, 64).WriteTo(dir.Path);
        SegmentBuilder.For(b, "job").Requests(0, StatsLayout.MallocCalls, 100, 7).WriteTo(dir.Path);
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: true);
        string pa = a.Pid.ToString(CultureInfo.InvariantCulture), pb = b.Pid.ToString(CultureInfo.InvariantCulture);

        var e = await Exposition.FromRegistryAsync(metrics.Registry);
        Assert.Equal(5, e.Value("konfiscator_malloc_total", ("command", "job"), ("pid", pa)));
        Assert.Equal(7, e.Value("konfiscator_malloc_total", ("command", "job"), ("pid", pb)));
        Assert.Equal(64, e.Value("konfiscator_in_use_bytes", ("pid", pa)));
        Assert.Equal(5, e.Value("konfiscator_request_size_bytes_count", ("pid", pa)));
        Assert.Equal(2, e.Value("konfiscator_processes", ("command", "job")));
        Assert.Null(e.Value("konfiscator_malloc_total", ("pid", "")));

        a.End();
        e = await Exposition.FromRegistryAsync(metrics.Registry);
        Assert.DoesNotContain(e.Samples, s => s.Labels.TryGetValue("pid", out var v) && v == pa);
        Assert.Equal(7, e.Value("konfiscator_malloc_total", ("command", "job"), ("pid", pb)));
        // The ended process's counts move to the group's pid="" series: sum by (command) holds.
        Assert.Equal(5, e.Value("konfiscator_malloc_total", ("command", "job"), ("pid", "")));
        Assert.Equal(5, e.Value("konfiscator_request_size_bytes_count", ("command", "job"), ("pid", "")));
        Assert.Equal(12, e.Find("konfiscator_malloc_total", ("command", "job")).Sum(s => s.Value));
        Assert.Equal(1, e.Value("konfiscator_processes", ("command", "job")));
        Assert.Null(e.Value("konfiscator_in_use_bytes", ("pid", "")));
    }

    [Fact]
    public async Task Read_errors_are_exposed_by_reason_from_zero()
    {
        using var dir = new TempDir();
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);
        var e = await Exposition.FromRegistryAsync(metrics.Registry);
        foreach (var error in SegmentReader.AllErrors)
            Assert.Equal(0, e.Value("konfiscator_exporter_read_errors_total", ("reason", SegmentReader.ReasonLabel(error))));

        File.WriteAllBytes(dir.File("5.kstats"), new byte[10]);
        new SegmentBuilder { Pid = 6, Magic = 1 }.WriteTo(dir.Path);
        e = await Exposition.FromRegistryAsync(metrics.Registry);
        e = await Exposition.FromRegistryAsync(metrics.Registry);
        Assert.Equal(1, e.Value("konfiscator_exporter_read_errors_total", ("reason", "truncated")));
        Assert.Equal(1, e.Value("konfiscator_exporter_read_errors_total", ("reason", "bad_magic")));
    }

    [Fact]
    public async Task OpenMetrics_exposition_names_counter_families_without_total_and_ends_with_eof()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "om").Requests(0, StatsLayout.MallocCalls, 8, 3).WriteTo(dir.Path);
        var metrics = new KonfiscatorMetrics(new Collector(dir.Path), perPid: false);
        var e = await Exposition.FromRegistryAsync(metrics.Registry, ExpositionFormat.OpenMetricsText);
        Assert.Equal("counter", e.Types["konfiscator_malloc"]);
        Assert.Equal(3, e.Value("konfiscator_malloc_total", ("command", "om")));
        Assert.EndsWith("# EOF\n", e.Text);
    }

    [Fact]
    public void Histogram_feeder_reproduces_bucket_counts_and_sum_exactly()
    {
        // Random request sizes arrive in random batches; after every batch the exposed histogram
        // must equal what the segment says.
        Gen.Select(Gen.ULong[0, 1UL << 34].Array[1, 40].Array[1, 6], Gen.Bool)
            .Sample((batches, logSizes) =>
            {
                var registry = Prometheus.Metrics.NewCustomRegistry();
                var histogram = Prometheus.Metrics.WithCustomRegistry(registry).CreateHistogram("h", "h",
                    new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, StatsLayout.HistogramBuckets - 1) });
                var feeder = new HistogramFeeder();
                var buckets = new ulong[StatsLayout.HistogramBuckets];
                ulong sum = 0;
                foreach (var batch in batches)
                {
                    foreach (ulong raw in batch)
                    {
                        ulong size = logSizes ? 1UL << (int)(raw % 36) : raw;
                        buckets[StatsLayout.HistogramBucket(size)]++;
                        sum += size;
                    }
                    feeder.Feed(histogram, buckets, sum);
                    var e = Exposition.FromRegistryAsync(registry).GetAwaiter().GetResult();
                    ulong cumulative = 0;
                    for (int i = 0; i < StatsLayout.HistogramBuckets; i++)
                    {
                        cumulative += buckets[i];
                        double le = Figures.BucketUpperBound(i);
                        string label = double.IsPositiveInfinity(le) ? "+Inf" : le.ToString("R", CultureInfo.InvariantCulture);
                        Assert.Equal(cumulative, e.Value("h_bucket", ("le", label)));
                    }
                    Assert.Equal(cumulative, e.Value("h_count"));
                    double exposedSum = e.Value("h_sum")!.Value;
                    Assert.True(Math.Abs(exposedSum - sum) <= 1e-9 * sum + 1e-6, $"sum {exposedSum} != {sum}");
                }
            }, iter: 60);
    }

    [Fact]
    public void Histogram_feeder_carries_a_torn_sum_to_the_next_collection()
    {
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var histogram = Prometheus.Metrics.WithCustomRegistry(registry).CreateHistogram("h", "h",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, StatsLayout.HistogramBuckets - 1) });
        var feeder = new HistogramFeeder();
        var buckets = new ulong[StatsLayout.HistogramBuckets];
        buckets[4] = 1; // one request of 9..16 bytes counted, its size (10) not yet added to the sum
        feeder.Feed(histogram, buckets, 0);
        Assert.Equal(9, histogram.Sum); // the smallest size the bucket allows
        buckets[4] = 2;
        feeder.Feed(histogram, buckets, 20); // both requests were 10 bytes
        Assert.Equal(20, histogram.Sum, 6);
        Assert.Equal(2, histogram.Count);
    }
}
