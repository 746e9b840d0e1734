using System.Globalization;
using System.Text.Json;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Konfiscator.Tool.Output;

/// <summary>One process's figures, for <c>konfiscator stats</c>.</summary>
internal static class StatsOutput
{
    public static IRenderable Human(ProcessStats s, bool live, string directory)
    {
        var rows = new List<IRenderable>
        {
            new Text($"pid {s.Pid} ({s.Command}), {(live ? "running" : "ended")}, image {s.Generation}, " +
                     $"{s.ArenaCount} arena{(s.ArenaCount == 1 ? "" : "s")}, started {s.StartTime} clock ticks after boot"),
            new Text($"segment {Path.Combine(directory, s.FileName)}"),
        };
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("value").RightAligned());
        foreach (var figure in Figures.All)
            table.AddRow(new Text(SummaryTable.Label(figure)), new Text(Format.Value(figure, s[figure.Counter])));
        table.AddRow(new Text("requests"), new Text(Format.Count(s.HistogramCount)));
        table.AddRow(new Text("requested bytes"), new Text(Format.Bytes(s[StatsLayout.RequestSizeSum])));
        rows.Add(table);

        if (s.HistogramCount > 0)
        {
            var chart = new BarChart().Label("request sizes").Width(60);
            var histogram = s.Histogram;
            for (int i = 0; i < histogram.Length; i++)
                if (histogram[i] > 0)
                    chart.AddItem(Format.Bucket(i), histogram[i], Color.Teal);
            rows.Add(chart);
        }
        return new Rows(rows);
    }

    public static void Json(Stream output, ProcessStats s, bool live, string directory)
    {
        using var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteNumber("pid", s.Pid);
        json.WriteString("command", s.Command);
        json.WriteBoolean("live", live);
        json.WriteNumber("start_time", s.StartTime);
        json.WriteNumber("generation", s.Generation);
        json.WriteNumber("arenas", s.ArenaCount);
        json.WriteString("segment", Path.Combine(directory, s.FileName));
        json.WriteStartObject("figures");
        foreach (var figure in Figures.All)
            json.WriteNumber(figure.Name, s[figure.Counter]);
        json.WriteEndObject();
        json.WriteStartObject(Figures.RequestSizeName);
        json.WriteNumber("count", s.HistogramCount);
        json.WriteNumber("sum", s[StatsLayout.RequestSizeSum]);
        json.WriteStartArray("buckets");
        var histogram = s.Histogram;
        for (int i = 0; i < histogram.Length; i++)
        {
            json.WriteStartObject();
            double le = Figures.BucketUpperBound(i);
            json.WriteString("le", double.IsPositiveInfinity(le) ? "+Inf" : le.ToString("R", CultureInfo.InvariantCulture));
            json.WriteNumber("count", histogram[i]);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
        json.Flush();
        output.Write("\n"u8);
    }
}
