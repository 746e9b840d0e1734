using System.Text;
using System.Text.Json;

namespace Konfiscator.Bench.Reports;

/// <summary>The results as JSON (schema "konfiscator-bench/1"): environment, allocators, workloads,
/// one entry per workload × allocator with its medians, ratios and every run, the per-allocator
/// summary, the stats overhead and the problems. Written with Utf8JsonWriter (no reflection), so it
/// works in a trimmed or AOT-compiled tool.</summary>
public static class JsonReport
{
    /// <summary>The schema name written as "schema".</summary>
    public const string Schema = "konfiscator-bench/1";

    /// <summary>The results as indented JSON text.</summary>
    public static string Write(BenchResults results)
    {
        using var stream = new MemoryStream();
        Write(results, stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Writes the results as indented UTF-8 JSON to a stream.</summary>
    public static void Write(BenchResults results, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(stream);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        var env = results.Environment;
        w.WriteStartObject();
        w.WriteString("schema", Schema);
        w.WriteStartObject("environment");
        w.WriteString("started_at", env.StartedAt);
        w.WriteNumber("duration_seconds", Math.Round(env.Duration.TotalSeconds, 3));
        w.WriteString("cpu", env.Cpu);
        w.WriteNumber("cores", env.Cores);
        w.WriteString("kernel", env.Kernel);
        Str(w, "glibc", env.Glibc);
        Str(w, "compiler", env.Compiler);
        Str(w, "python", env.Python);
        w.WriteString("mode", env.Quick ? "quick" : "normal");
        w.WriteNumber("scale", env.Scale);
        w.WriteNumber("rounds", env.Rounds);
        w.WriteNumber("seed", env.Seed);
        w.WriteString("baseline", AllocatorCatalog.Glibc);
        Num(w, "other_cpu_load_median", env.OtherCpuLoadMedian);
        Num(w, "other_cpu_load_max", env.OtherCpuLoadMax);
        w.WriteNumber("max_other_cpu_load", env.MaxOtherCpuLoad);
        w.WriteNumber("repeated_runs", env.RepeatedRuns);
        w.WriteEndObject();

        w.WriteStartArray("allocators");
        foreach (var a in results.Allocators)
        {
            w.WriteStartObject();
            w.WriteString("name", a.Name);
            Str(w, "library", a.Library);
            Str(w, "version", a.Version);
            w.WriteBoolean("installed", a.Available);
            w.WriteBoolean("baseline", a.IsBaseline);
            w.WriteBoolean("named_library", a.IsNamedLibrary);
            Str(w, "note", a.Note);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("workloads");
        foreach (var wl in results.Workloads)
        {
            w.WriteStartObject();
            w.WriteString("id", wl.Id);
            w.WriteString("title", wl.Title);
            w.WriteString("description", wl.Description);
            w.WriteBoolean("allocator_bound", wl.AllocatorBound);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("results");
        foreach (var c in results.Cells)
        {
            w.WriteStartObject();
            w.WriteString("workload", c.Workload);
            w.WriteString("allocator", c.Allocator);
            w.WriteString("status", StatusName(c.Status));
            w.WriteNumber("runs", c.Runs.Count);
            w.WriteNumber("succeeded_runs", c.SucceededRuns);
            Num(w, "median_wall_seconds", c.MedianWallSeconds);
            Num(w, "min_wall_seconds", c.MinWallSeconds);
            Num(w, "max_wall_seconds", c.MaxWallSeconds);
            Num(w, "time_ratio_to_glibc", c.TimeRatio);
            Num(w, "round_time_ratio_low", c.RoundRatioLow);
            Num(w, "round_time_ratio_high", c.RoundRatioHigh);
            Num(w, "median_peak_rss_bytes", c.MedianPeakRssBytes);
            Num(w, "rss_ratio_to_glibc", c.RssRatio);
            Num(w, "peak_live_bytes", c.PeakLiveBytes);
            Num(w, "peak_rss_per_live_byte", c.RssPerLiveByte);
            Num(w, "ns_per_pair", c.NsPerPair);
            Num(w, "ns_per_pair_ratio_to_glibc", c.NsPerPairRatio);
            Str(w, "note", c.Note);
            w.WriteStartArray("samples");
            foreach (var s in c.Runs)
            {
                w.WriteStartObject();
                w.WriteNumber("round", s.Round);
                w.WriteNumber("sequence", s.Sequence);
                w.WriteBoolean("succeeded", s.Succeeded);
                Str(w, "error", s.Error);
                w.WriteNumber("wall_seconds", s.WallSeconds);
                w.WriteNumber("peak_rss_bytes", s.PeakRssBytes);
                w.WriteNumber("user_seconds", s.UserSeconds);
                w.WriteNumber("system_seconds", s.SystemSeconds);
                w.WriteNumber("minor_faults", s.MinorFaults);
                w.WriteNumber("exit_code", s.ExitCode);
                w.WriteNumber("signal", s.Signal);
                Str(w, "malloc_library", s.MallocLibrary);
                Str(w, "checksum", s.Checksum);
                Num(w, "workload_seconds", s.WorkloadSeconds);
                Num(w, "pairs", s.Pairs);
                Num(w, "other_cpu_load", s.OtherCpuLoad);
                w.WriteNumber("attempts", s.Attempts);
                if (s.Output is not null)
                {
                    // The workload's own line, kept as JSON when it is JSON.
                    w.WritePropertyName("output");
                    try
                    {
                        using var doc = JsonDocument.Parse(s.Output);
                        doc.RootElement.WriteTo(w);
                    }
                    catch (JsonException)
                    {
                        w.WriteStringValue(s.Output);
                    }
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("summary");
        foreach (var s in results.Summaries)
        {
            w.WriteStartObject();
            w.WriteString("allocator", s.Allocator);
            Num(w, "time_ratio_geometric_mean", s.TimeRatioGeometricMean);
            Num(w, "round_time_ratio_geometric_mean_low", s.RoundGeometricMeanLow);
            Num(w, "round_time_ratio_geometric_mean_high", s.RoundGeometricMeanHigh);
            Num(w, "rss_ratio_geometric_mean", s.RssRatioGeometricMean);
            w.WriteNumber("workloads_counted", s.WorkloadsCounted);
            w.WriteNumber("workloads_failed", s.WorkloadsFailed);
            Num(w, "thread_scaling_2t_over_1t", s.ThreadScaling);
            Num(w, "fragmentation_peak_rss_per_live_byte", s.FragmentationRssPerLiveByte);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        if (results.StatsOverhead is { } overhead)
        {
            w.WriteStartObject("stats_overhead");
            Num(w, "geometric_mean", overhead.GeometricMean);
            w.WriteStartArray("workloads");
            foreach (var r in overhead.Workloads)
            {
                w.WriteStartObject();
                w.WriteString("workload", r.Workload);
                Num(w, "ratio", r.Ratio);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("stats_overhead");
        }

        w.WriteStartArray("problems");
        foreach (string p in results.Problems) w.WriteStringValue(p);
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
    }

    private static string StatusName(CellStatus s) => s switch
    {
        CellStatus.Ok => "ok",
        CellStatus.Failed => "failed",
        CellStatus.NotInstalled => "not_installed",
        _ => "unavailable",
    };

    private static void Str(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }

    private static void Num(Utf8JsonWriter w, string name, double? value)
    {
        if (value is double v && double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    private static void Num(Utf8JsonWriter w, string name, long? value)
    {
        if (value is long v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}
