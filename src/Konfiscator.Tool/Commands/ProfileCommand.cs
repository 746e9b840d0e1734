using System.CommandLine;
using System.Globalization;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Cli;
using Konfiscator.Tool.Profiling;
using Konfiscator.Tool.Views;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator profile [PID | -p PID | -n NAME] [--top N] [--pprof FILE] [--flame FILE] [--peak] [--stats-dir DIR]</c>:
/// a process's heap by allocation site, from its sample tables, symbolized here (docs/profiling.md).
/// Reads only. Self-contained: the command line registers it with one line.</summary>
internal static class ProfileCommand
{
    public static Command Create()
    {
        // The process is chosen as stats, top and heap choose it (also under any konfiscator run),
        // and a PID may name one that has exited while its file is still there.
        var pidArgument = ProcessChoice.PidArgument();
        var pid = ProcessChoice.PidOption();
        var name = ProcessChoice.NameOption();
        var top = new Option<int>("--top")
        {
            Description = "How many allocation sites the table shows",
            HelpName = "N",
            DefaultValueFactory = _ => 20,
        };
        top.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && (!int.TryParse(result.Tokens[^1].Value, out int n) || n <= 0))
                result.AddError($"--top must be a positive number, not '{result.Tokens[^1].Value}'");
        });
        var pprof = new Option<string?>("--pprof") { Description = "Write a gzipped profile.proto for go tool pprof", HelpName = "FILE" };
        var flame = new Option<string?>("--flame")
        {
            Description = "Write an SVG flame graph of bytes in use to FILE, and its collapsed stacks beside it (.folded)",
            HelpName = "FILE",
        };
        var peak = new Option<bool>("--peak") { Description = "The heap as it was at the process's peak of bytes in use" };
        var statsDir = SharedOptions.StatsDir();
        var command = new Command("profile", "Show a process's heap by allocation site (sampled), or write it for pprof or as a flame graph")
        {
            pidArgument, pid, name, top, pprof, flame, peak, statsDir,
        };
        Help.Examples(command,
            ("konfiscator profile -n python3", "the newest live python3's heap by allocation site"),
            ("konfiscator profile 4242 --pprof heap.pb.gz", "write process 4242's heap for go tool pprof -top heap.pb.gz"),
            ("konfiscator profile --peak --flame peak.svg", "a flame graph of the heap at its peak"));
        command.SetAction(parse =>
        {
            if (parse.GetValue(pid) is not null && parse.GetValue(pidArgument) is not null)
                throw new ToolException("give the PID once: either as an argument or with -p", ExitCodes.Usage);
            return Run(parse.GetValue(pid) ?? parse.GetValue(pidArgument), parse.GetValue(name), parse.GetValue(top),
                parse.GetValue(pprof), parse.GetValue(flame), parse.GetValue(peak), parse.GetValue(statsDir), Console.Out);
        });
        return command;
    }

    public static int Run(int? pid, string? name, int top, string? pprof, string? flame, bool peak, string? statsDir, TextWriter output)
    {
        Publisher chosen;
        try
        {
            chosen = ProcessChoice.Choose(pid, name, statsDir, Console.Error);
        }
        catch (ToolException e) when (pid is not null || name is not null)
        {
            // A process that ended had its file collected by an exporter, which keeps its profile.
            string query = pid is not null ? $"pid={pid}" : $"command={name}";
            throw new ToolException($"{e.Message}; if it ended and an exporter collected its file, that exporter " +
                                    $"serves its last profile at /debug/pprof/heap?{query}", e.ExitCode);
        }
        var segment = chosen.Segment;
        var profile = ProfileSource.Load(chosen.Directory, segment, peak, new Symbolizer());
        var table = profile.Table;
        if (table.TornEntries + table.GarbageEntries > 0)
            Console.Error.WriteLine($"konfiscator: skipped {table.TornEntries} torn and {table.GarbageEntries} garbage sample entries of process {profile.Pid}");
        if (peak && table.PeakBytes == 0)
            Console.Error.WriteLine($"konfiscator: process {profile.Pid} has no peak sample table yet");

        if (pprof is not null)
        {
            Write(pprof, stream => PprofWriter.Write(profile, stream));
            Console.Error.WriteLine($"konfiscator: wrote {pprof} (go tool pprof -top {pprof})");
        }
        if (flame is not null)
        {
            string folded = Path.ChangeExtension(flame, ".folded");
            if (folded == flame) folded = flame + ".folded";
            Write(flame, stream => { using var w = new StreamWriter(stream); w.Write(FlameGraph.Svg(profile)); });
            Write(folded, stream => { using var w = new StreamWriter(stream); w.Write(FlameGraph.Collapsed(profile)); });
            Console.Error.WriteLine($"konfiscator: wrote {flame} and {folded}");
        }
        if (pprof is null && flame is null)
            output.Write(TopTable(profile, top, segment.Live));
        return ExitCodes.Ok;
    }

    private static void Write(string path, Action<Stream> write)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
            write(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DirectoryNotFoundException)
        {
            throw new ToolException($"cannot write {path}: {e.Message}");
        }
    }

    /// <summary>The top sites as a plain table: one row per site, the site last (it may hold spaces).</summary>
    public static string TopTable(HeapProfile profile, int top, bool live)
    {
        var table = profile.Table;
        var inv = CultureInfo.InvariantCulture;
        var text = new System.Text.StringBuilder();
        string what = profile.Peak
            ? $"at its peak ({Output.Format.BytesShort(table.PeakBytes)} in use)"
            : live ? "now" : "when it ended";
        text.AppendLine(inv, $"process {profile.Pid} ({profile.Command}) {what}: sampling {table.StateText}, mean {table.MeanBytes} bytes; " +
                             $"{table.Samples.Count} live samples stand for {Output.Format.BytesShort((ulong)profile.InUseBytes)} in {profile.InUseObjects:0} blocks");
        ulong dropped = table.Counters[SampleLayout.CounterTableFull] + table.Counters[SampleLayout.CounterNoFrames];
        if (dropped > 0) text.AppendLine(inv, $"({dropped} samples were dropped: see konfiscator_sample_drops_total)");
        text.AppendLine("   inuse_bytes  inuse%  inuse_objects   alloc_bytes  samples  site");
        double total = Math.Max(profile.InUseBytes, 1);
        foreach (var site in profile.Sites().Take(top))
            text.AppendLine(inv, $"{site.InUseBytes,14:0} {100 * site.InUseBytes / total,6:0.0}% {site.InUseObjects,14:0} {site.AllocBytes,13:0} {site.LiveSamples,8}  {site.Site}");
        return text.ToString();
    }
}
