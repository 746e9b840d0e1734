using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Cli;
using Konfiscator.Tool.Output;
using Konfiscator.Tool.Views;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator ps [--interval S] [--json] [--stats-dir DIR]</c>: every live process that
/// publishes, in the default directory and under every running <c>konfiscator run</c>.</summary>
internal static class PsCommand
{
    public static Command Create()
    {
        var interval = SharedOptions.Interval("Seconds between the two readings that give calls/s (0: the average since each process started)", 0.5, 0, 60);
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var statsDir = SharedOptions.StatsDir();
        var ps = new Command("ps", "List the processes that publish allocator statistics (also those under any konfiscator run)") { interval, json, statsDir };
        Help.Examples(ps,
            ("konfiscator ps", "every live process that publishes, with its calls/s"),
            ("konfiscator ps --interval 0", "at once: calls/s averaged since each process started"),
            ("konfiscator ps --json", "the same, for scripts"));
        ps.SetAction(async (parse, cancel) => await RunAsync(parse.GetValue(interval), parse.GetValue(json), parse.GetValue(statsDir)));
        return ps;
    }

    public sealed record Row(Publisher Publisher, double? Age, double CallsPerSecond);

    public static async Task<int> RunAsync(double interval, bool json, string? statsDir)
    {
        var directories = Publishers.Directories(statsDir);
        var rows = await SampleAsync(directories, TimeSpan.FromSeconds(interval));
        if (json) WriteJson(rows);
        else Console.Out.Write(Table(rows));
        return ExitCodes.Ok;
    }

    /// <summary>The live publishers with their calls/s: between two readings <paramref name="interval"/>
    /// apart, or (interval 0, or a process seen only once) since it started.</summary>
    public static async Task<List<Row>> SampleAsync(IReadOnlyList<string> directories, TimeSpan interval)
    {
        var problems = new List<(string Directory, string Error, bool Untrusted)>();
        var first = Publishers.Scan(directories, problems).Where(p => p.Live).ToList();
        foreach (var (directory, error, untrusted) in problems)
            Console.Error.WriteLine(untrusted ? $"konfiscator: skipping {directory}: {error}" : $"konfiscator: cannot list {directory}: {error}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        List<Publisher> second = first;
        if (interval > TimeSpan.Zero && first.Count > 0)
        {
            await Task.Delay(interval);
            second = Publishers.Scan(directories).Where(p => p.Live).ToList();
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var earlier = first.ToDictionary(p => (p.Stats.Key, p.Directory));
        return second.Select(p =>
        {
            double? age = Rates.AgeSeconds(p.Stats);
            double rate = earlier.TryGetValue((p.Stats.Key, p.Directory), out var e) && !ReferenceEquals(e, p)
                ? Rates.PerSecond(Rates.Calls(e.Stats), Rates.Calls(p.Stats), seconds)
                : Rates.PerSecond(0, Rates.Calls(p.Stats), age ?? 0);
            return new Row(p, age, rate);
        }).ToList();
    }

    public static string Table(IReadOnlyList<Row> rows)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine($"{"PID",7} {"COMMAND",-15} {"AGE",7} {"IN USE",9} {"PEAK",9} {"CALLS/S",8}  DIRECTORY");
        foreach (var r in rows)
        {
            var s = r.Publisher.Stats;
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{s.Pid,7} {Clip(s.Command, 15),-15} {Rates.Age(r.Age),7} {Format.BytesShort(s[StatsLayout.BytesInUse]),9} " +
                $"{Format.BytesShort(s[StatsLayout.PeakBytesInUse]),9} {Rates.Rate(r.CallsPerSecond),8}  {r.Publisher.Directory}"));
        }
        if (rows.Count == 0) text.AppendLine("(no live process publishes statistics)");
        return text.ToString();
    }

    private static string Clip(string text, int width) => text.Length <= width ? text : text[..width];

    private static void WriteJson(IReadOnlyList<Row> rows)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var json = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var r in rows)
            {
                var s = r.Publisher.Stats;
                json.WriteStartObject();
                json.WriteNumber("pid", s.Pid);
                json.WriteString("command", s.Command);
                if (r.Age is double age) json.WriteNumber("age_seconds", Math.Round(age, 2));
                json.WriteNumber("in_use_bytes", s[StatsLayout.BytesInUse]);
                json.WriteNumber("peak_in_use_bytes", s[StatsLayout.PeakBytesInUse]);
                json.WriteNumber("calls", Rates.Calls(s));
                json.WriteNumber("calls_per_second", Math.Round(r.CallsPerSecond, 1));
                json.WriteString("directory", r.Publisher.Directory);
                json.WriteString("segment", r.Publisher.SegmentPath);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        stdout.Write("\n"u8);
    }
}
