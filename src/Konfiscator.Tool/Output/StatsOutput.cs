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
    public static IRenderable Human(ProcessStats s, bool live, string directory, bool all = false)
    {
        string age = Uptime.Since(s.StartTime) is { } t ? Uptime.Describe(t) : "?";
        string state = live ? $"running for {age}" : $"ended (started {age} ago)";
        string exec = s.Generation > 0 ? $", after {s.Generation} exec{(s.Generation == 1 ? "" : "s")}" : "";
        var rows = new List<IRenderable>
        {
            new Text($"pid {s.Pid} ({s.Command}), {state}{exec}, {s.ArenaCount} arena{(s.ArenaCount == 1 ? "" : "s")}"),
            new Text($"segment {Path.Combine(directory, s.FileName)}"),
        };
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("statistic");
        table.AddColumn(new TableColumn("value").RightAligned());
        int hidden = 0;
        foreach (var figure in Figures.All)
        {
            if (!all && s[figure.Counter] == 0)
            {
                hidden++;
                continue;
            }
            table.AddRow(new Text(SummaryTable.Label(figure)), new Text(Format.Value(figure, s[figure.Counter])));
        }
        foreach (var ratio in Figures.Ratios)
            table.AddRow(new Text(SummaryTable.Label(ratio)), new Text(Format.Ratio(ratio.Compute(c => s[c]))));
        table.AddRow(new Text("requests"), new Text(Format.Count(s.HistogramCount)));
        table.AddRow(new Text("requested bytes"), new Text(Format.Bytes(s[StatsLayout.RequestSizeSum])));
        rows.Add(table);
        rows.Add(new Text(SummaryTable.DefragNote));
        if (hidden > 0) rows.Add(new Text($"{hidden} rows that are zero are not shown (--all shows them)"));

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
        if (Uptime.Since(s.StartTime) is { } age) json.WriteNumber("age_seconds", Math.Round(age.TotalSeconds, 2));
        json.WriteNumber("generation", s.Generation);
        json.WriteNumber("arenas", s.ArenaCount);
        json.WriteString("segment", Path.Combine(directory, s.FileName));
        json.WriteStartObject("figures");
        foreach (var figure in Figures.All)
            json.WriteNumber(figure.Name, s[figure.Counter]);
        foreach (var ratio in Figures.Ratios)
        {
            // JSON has no NaN: an undefined ratio is null.
            double value = ratio.Compute(c => s[c]);
            if (double.IsFinite(value)) json.WriteNumber(ratio.Name, value);
            else json.WriteNull(ratio.Name);
        }
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
