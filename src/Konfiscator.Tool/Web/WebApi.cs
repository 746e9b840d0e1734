using System.Globalization;
using System.Text.Json;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Profiling;
using Konfiscator.Tool.Views;
using Microsoft.AspNetCore.Http;

namespace Konfiscator.Tool.Web;

/// <summary>The page at <c>/</c> and what it reads: <c>/api/processes</c>, <c>/api/process/{pid}</c>
/// (JSON, docs/web.md) and <c>/svg/{pid}/{chart}.svg</c> (charts drawn here). Processes are the live
/// ones of the served directory, as of the last collection (every second).</summary>
internal sealed class WebApi(string directory, History history, Symbolizer? symbolizer = null)
{
    // Shared with /debug/pprof/heap when the server has one: symbol tables are read once per object.
    private readonly Symbolizer _symbolizer = symbolizer ?? new Symbolizer();

    public History History { get; } = history;

    /// <summary>Handles the request when it is one of ours; false otherwise.</summary>
    public async Task<bool> TryHandleAsync(HttpContext context)
    {
        var request = context.Request;
        string path = request.Path.Value ?? "";
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method)) return false;
        if (path is "/" or "/index.html")
        {
            await SendAsync(context, "text/html; charset=utf-8", WebPage.Html);
            return true;
        }
        if (path == "/api/processes")
        {
            await SendAsync(context, "application/json", Processes());
            return true;
        }
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 3 && parts[0] == "api" && parts[1] == "process" && ParsePid(parts[2]) is int pid)
        {
            await SendOrMissingAsync(context, "application/json", Process(pid));
            return true;
        }
        if (parts.Length == 4 && parts[0] == "api" && parts[1] == "process" && parts[3] == "flame.svg" && ParsePid(parts[2]) is int flamePid)
        {
            var (status, body) = Flame(flamePid);
            if (status != StatusCodes.Status200OK)
            {
                context.Response.StatusCode = status;
                await SendAsync(context, "application/json", body);
            }
            else await SendAsync(context, "image/svg+xml", body);
            return true;
        }
        if (parts.Length == 3 && parts[0] == "svg" && ParsePid(parts[1]) is int chartPid)
        {
            await SendOrMissingAsync(context, "image/svg+xml", Chart(chartPid, parts[2]));
            return true;
        }
        return false;
    }

    private static int? ParsePid(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0 ? pid : null;

    private static async Task SendOrMissingAsync(HttpContext context, string type, string? body)
    {
        if (body is null)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            await SendAsync(context, "application/json", "{\"error\":\"no such live process\"}\n");
            return;
        }
        await SendAsync(context, type, body);
    }

    private static async Task SendAsync(HttpContext context, string type, string body)
    {
        var response = context.Response;
        response.ContentType = type;
        response.Headers.CacheControl = "no-store";
        // Nothing on the page comes from elsewhere, and no script runs but its own.
        response.Headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:";
        response.Headers.XContentTypeOptions = "nosniff";
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(body);
        response.ContentLength = bytes.Length;
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await response.Body.WriteAsync(bytes, context.RequestAborted);
    }

    public string Processes()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("directory", directory);
            json.WriteStartArray("processes");
            foreach (var p in History.Live.OrderByDescending(p => p.StartTime).ThenByDescending(p => p.Pid))
            {
                json.WriteStartObject();
                WriteSummary(json, p);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private void WriteSummary(Utf8JsonWriter json, ProcessStats p)
    {
        json.WriteNumber("pid", p.Pid);
        json.WriteString("command", p.Command);
        json.WriteNumber("start_time", p.StartTime);
        if (Rates.AgeSeconds(p) is double age) json.WriteNumber("age_seconds", Math.Round(age, 1));
        json.WriteNumber("in_use_bytes", p[StatsLayout.BytesInUse]);
        json.WriteNumber("peak_in_use_bytes", p[StatsLayout.PeakBytesInUse]);
        json.WriteNumber("mapped_bytes", p[StatsLayout.BytesMapped]);
        json.WriteNumber("calls", Rates.Calls(p));
        json.WriteNumber("calls_per_second", Math.Round(History.CallRate(p), 1));
    }

    public string? Process(int pid)
    {
        if (History.Find(pid) is not var (p, samples)) return null;
        var map = HeapMapReader.Read(Path.Combine(directory, p.FileName));
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            WriteSummary(json, p);
            json.WriteStartObject("figures");
            foreach (var figure in Figures.All) json.WriteNumber(figure.Name, p[figure.Counter]);
            json.WriteEndObject();
            json.WriteStartArray("request_size_buckets");
            foreach (ulong b in p.Histogram) json.WriteNumberValue(b);
            json.WriteEndArray();
            json.WriteStartObject("history");
            json.WriteNumber("now_seconds", Math.Round(History.Now, 2));
            WriteArray(json, "seconds", samples.Select(s => Math.Round(s.Seconds, 2)));
            WriteArray(json, "in_use_bytes", samples.Select(s => (double)s.InUse));
            WriteArray(json, "peak_in_use_bytes", samples.Select(s => (double)s.Peak));
            WriteArray(json, "calls", samples.Select(s => (double)s.Calls));
            WriteArray(json, "allocated_bytes", samples.Select(s => (double)s.Allocated));
            json.WriteEndObject();
            if (map is null) json.WriteNull("heap_map");
            else WriteMap(json, map);
            WriteSampling(json, Path.Combine(directory, p.FileName));
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Whether there is a flame graph to show: the sampling state and the live samples
    /// (the page asks for flame.svg only when there are some, and says why not otherwise).</summary>
    private static void WriteSampling(Utf8JsonWriter json, string segmentPath)
    {
        var read = SampleReader.Read(segmentPath);
        json.WriteStartObject("sampling");
        json.WriteBoolean("on", read.Ok && read.Table!.SamplingOn);
        json.WriteString("state", !read.Ok
            ? read.Error == SampleReadError.Absent ? "no sample tables" : $"unreadable: {SampleReader.ReasonLabel(read.Error)}"
            : read.Table!.StateText);
        json.WriteNumber("live_samples", read.Ok ? read.Table!.Samples.Count : 0);
        json.WriteEndObject();
    }

    private static void WriteArray(Utf8JsonWriter json, string name, IEnumerable<double> values)
    {
        json.WriteStartArray(name);
        foreach (double v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }

    private static void WriteMap(Utf8JsonWriter json, HeapMap map)
    {
        json.WriteStartObject("heap_map");
        json.WriteNumber("used_bytes", map.UsedBytes);
        json.WriteNumber("free_bytes", map.FreeBytes);
        json.WriteNumber("cached_bytes", map.CachedBytes);
        json.WriteStartArray("free_block_buckets");
        foreach (ulong b in map.FreeHistogram()) json.WriteNumberValue(b);
        json.WriteEndArray();
        json.WriteStartArray("arenas");
        foreach (var a in map.Arenas)
        {
            json.WriteStartObject();
            json.WriteNumber("arena", a.Arena);
            json.WriteNumber("cell_bytes", a.CellBytes);
            json.WriteNumber("omitted_regions", a.OmittedRegions);
            json.WriteStartArray("regions");
            foreach (var r in a.Regions)
            {
                json.WriteStartObject();
                json.WriteString("start", $"0x{r.Start:x}");
                json.WriteNumber("bytes", r.Bytes);
                // Per cell: [used, free, cached], each in 255ths of the cell.
                json.WriteStartArray("cells");
                for (int i = 0; i < r.CellCount; i++)
                {
                    var c = a.Cells[r.FirstCell + i];
                    json.WriteStartArray();
                    json.WriteNumberValue(c.Used);
                    json.WriteNumberValue(c.Free);
                    json.WriteNumberValue(c.Cached);
                    json.WriteEndArray();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>The allocation-site flame graph of a live process (bytes in use, from its sample
    /// tables), drawn by the profile command's renderer; 404 with a JSON reason when the process is
    /// not live or publishes no samples.</summary>
    public (int Status, string Body) Flame(int pid)
    {
        static string Error(string message)
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("error", message);
                json.WriteEndObject();
            }
            return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
        }
        if (History.Find(pid) is not var (p, _)) return (StatusCodes.Status404NotFound, Error("no such live process"));
        var read = SampleReader.Read(Path.Combine(directory, p.FileName));
        if (!read.Ok)
            return (StatusCodes.Status404NotFound, Error(read.Error == SampleReadError.Absent
                ? "no allocation samples"
                : $"cannot read the allocation samples: {SampleReader.ReasonLabel(read.Error)}"));
        if (!read.Table!.SamplingOn && read.Table.Samples.Count == 0)
            return (StatusCodes.Status404NotFound, Error($"no allocation samples: sampling {read.Table.StateText}"));
        var profile = HeapProfile.Build(read.Table, _symbolizer, p.Pid, p.Command, peak: false);
        return (StatusCodes.Status200OK, FlameGraph.Svg(profile));
    }

    public string? Chart(int pid, string name)
    {
        if (History.Find(pid) is not var (p, samples)) return null;
        double[] times = samples.Select(s => s.Seconds).ToArray();
        static string Bytes(double v) => Output.Format.BytesShort((ulong)v);
        switch (name)
        {
            case "in-use.svg":
                return Svg.LineChart("inuse", "bytes in use and peak", times,
                [
                    new Svg.Line("in use", "#c0392b", samples.Select(s => (double)s.InUse).ToArray()),
                    new Svg.Line("peak", "#7f8c8d", samples.Select(s => (double)s.Peak).ToArray()),
                ], Bytes);
            case "calls.svg":
                var rates = new double[samples.Length];
                for (int i = 1; i < samples.Length; i++)
                    rates[i] = Rates.PerSecond(samples[i - 1].Calls, samples[i].Calls, samples[i].Seconds - samples[i - 1].Seconds);
                if (samples.Length > 1) rates[0] = rates[1];
                return Svg.LineChart("calls", "calls per second", times,
                    [new Svg.Line("calls/s", "#2471a3", rates)], v => Rates.Rate(v));
            case "sizes.svg":
                return Svg.SizeHistogram(p);
            case "heap.svg":
                return Svg.HeapMap(HeapMapReader.Read(Path.Combine(directory, p.FileName)));
            default:
                return null;
        }
    }
}
