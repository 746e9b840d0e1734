using System.Globalization;
using System.Text;

namespace Konfiscator.Bench.Reports;

/// <summary>The results as Markdown: wall-time table with ratios to glibc and geometric means,
/// peak-RSS table, the target figures (thread scaling, fragmentation waste, stats overhead), the
/// allocators found, and every problem.</summary>
public static class MarkdownReport
{
    /// <summary>The whole report.</summary>
    public static string Write(BenchResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sb = new StringBuilder();
        var env = results.Environment;
        sb.AppendLine("## Allocator benchmark");
        sb.AppendLine();
        sb.AppendLine(Header(env));
        sb.AppendLine();
        if (env.Quick)
        {
            sb.AppendLine("> Quick mode: sizes ÷10 and few rounds. A smoke test of the harness; the figures are not a measurement.");
            sb.AppendLine();
        }
        sb.AppendLine("### Wall time: median, and ratio to glibc (lower is faster)");
        sb.AppendLine();
        sb.Append(TimeTable(results));
        if (results.Workloads.Any(w => w.AllocatorBound))
        {
            sb.AppendLine();
            sb.AppendLine(AllocatorBoundNote);
        }
        string rounds = RoundRangeTable(results);
        if (rounds.Length > 0)
        {
            sb.AppendLine();
            sb.AppendLine("### Round by round: the ratio to glibc's run of the same round, lowest–highest");
            sb.AppendLine();
            sb.AppendLine(RoundRangeNote);
            sb.AppendLine();
            sb.Append(rounds);
        }
        string perPair = PerPairTable(results);
        if (perPair.Length > 0)
        {
            sb.AppendLine();
            sb.AppendLine("### Per operation: ns per malloc+free pair (the workload's own loop time ÷ its pairs), and ratio to glibc");
            sb.AppendLine();
            sb.Append(perPair);
        }
        sb.AppendLine();
        sb.AppendLine("### Peak RSS: median, and ratio to glibc");
        sb.AppendLine();
        sb.Append(RssTable(results));
        sb.AppendLine();
        string targets = TargetsTable(results);
        if (targets.Length > 0)
        {
            sb.AppendLine("### Scaling and waste");
            sb.AppendLine();
            sb.Append(targets);
        }
        if (results.StatsOverhead is { } overhead)
        {
            sb.AppendLine();
            sb.AppendLine($"### Cost of publishing statistics: konfiscator / konfiscator-nostats ({Konfiscator.Stats.StatsSchema.PublishVariable}=0)");
            sb.AppendLine();
            sb.Append(OverheadTable(results, overhead));
        }
        sb.AppendLine();
        sb.AppendLine("### Allocators");
        sb.AppendLine();
        sb.AppendLine("| allocator | library | version | note |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var a in results.Allocators)
            sb.AppendLine($"| {a.Name} | {(a.Library is null ? "—" : "`" + a.Library + "`")} | {a.Version ?? "—"} | {Escape(a.Note ?? "")} |");
        sb.AppendLine();
        sb.AppendLine("### Problems");
        sb.AppendLine();
        if (results.Problems.Count == 0) sb.AppendLine("None: every run exited 0 with the right output and the expected malloc.");
        foreach (string p in results.Problems) sb.AppendLine("- " + Escape(p));
        return sb.ToString();
    }

    /// <summary>Only the wall-time table (for a README or a terminal).</summary>
    public static string TimeTable(BenchResults results) =>
        RatioTable(results, c => c.MedianWallSeconds is double s ? Format.Seconds(s) : null, c => c.TimeRatio,
                   s => s.TimeRatioGeometricMean);

    /// <summary>The footnote that explains the mark on allocator-bound workloads.</summary>
    public const string AllocatorBoundNote =
        "† allocator-bound: tight loops of malloc and free (or the placement of what they return) with little work of the program's own between calls.";

    /// <summary>The workload's title, marked † when it is allocator-bound.</summary>
    public static string Title(WorkloadInfo workload)
    {
        ArgumentNullException.ThrowIfNull(workload);
        return workload.AllocatorBound ? workload.Title + " †" : workload.Title;
    }

    /// <summary>What the round-by-round table says.</summary>
    public const string RoundRangeNote =
        "Each round runs every allocator once, moments apart, so a round's ratio compares runs made under the same load; " +
        "a median ratio whose rounds spread across 1.00 is not distinguishable from glibc on this machine.";

    /// <summary>Per workload and allocator, the lowest and highest of the rounds' time ratios to glibc,
    /// and the same of the rounds' geometric means; empty with fewer than two rounds.</summary>
    public static string RoundRangeTable(BenchResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        if (results.Environment.Rounds < 2 || !results.Cells.Any(c => c.RoundRatioLow is not null)) return "";
        var sb = new StringBuilder();
        TableHead(sb, results);
        WorkloadRows(sb, results, results.Workloads,
            (c, a) => a.IsBaseline || !a.Available ? "—" : Range(c?.RoundRatioLow, c?.RoundRatioHigh));
        sb.Append("| **geometric mean** |");
        foreach (var a in results.Allocators)
        {
            var s = results.Summary(a.Name);
            string range = Range(s?.RoundGeometricMeanLow, s?.RoundGeometricMeanHigh);
            sb.Append(' ').Append(a.IsBaseline || !a.Available || range == "—" ? "—" : $"**{range}**").Append(" |");
        }
        sb.AppendLine();
        return sb.ToString();
    }

    private static string Range(double? low, double? high) =>
        low is double l && high is double h ? $"{Format.Plain(l)}–{Format.Plain(h)}" : "—";

    /// <summary>ns per malloc+free pair for the workloads that count their pairs; empty when none does.</summary>
    public static string PerPairTable(BenchResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var counted = results.Workloads.Where(w => results.Cells.Any(c => c.Workload == w.Id && c.NsPerPair is not null)).ToList();
        if (counted.Count == 0) return "";
        var sb = new StringBuilder();
        TableHead(sb, results);
        WorkloadRows(sb, results, counted, (c, a) =>
            Cell(c, a, c?.NsPerPair is double ns ? string.Create(CultureInfo.InvariantCulture, $"{ns:0.0} ns") : null, c?.NsPerPairRatio));
        return sb.ToString();
    }

    /// <summary>Only the peak-RSS table.</summary>
    public static string RssTable(BenchResults results) =>
        RatioTable(results, c => c.MedianPeakRssBytes is long b ? Format.Bytes(b) : null, c => c.RssRatio,
                   s => s.RssRatioGeometricMean);

    /// <summary>A row per workload (each allocator's median and its ratio to glibc's), then the
    /// geometric mean of the ratios, noting when it covers fewer workloads than the table.</summary>
    private static string RatioTable(BenchResults results, Func<CellResult, string?> value, Func<CellResult, double?> ratio,
                                     Func<AllocatorSummary, double?> geometricMean)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sb = new StringBuilder();
        TableHead(sb, results);
        WorkloadRows(sb, results, results.Workloads,
            (c, a) => Cell(c, a, c is null ? null : value(c), c is null ? null : ratio(c)));
        sb.Append("| **geometric mean** |");
        foreach (var a in results.Allocators)
        {
            var s = results.Summary(a.Name);
            double? g = s is null ? null : geometricMean(s);
            sb.Append(' ').Append(a.Available && g is double mean ? $"**{Format.Ratio(mean)}**" : "—");
            int missing = results.Workloads.Count - (s?.WorkloadsCounted ?? 0);
            if (a.Available && missing > 0 && g is not null)
                sb.Append(CultureInfo.InvariantCulture, $" ({s!.WorkloadsCounted}/{results.Workloads.Count} workloads)");
            sb.Append(" |");
        }
        sb.AppendLine();
        return sb.ToString();
    }

    /// <summary>Thread scaling and fragmentation waste per allocator.</summary>
    public static string TargetsTable(BenchResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sb = new StringBuilder();
        var frag = results.Workloads.FirstOrDefault(w => w.Id == WorkloadCatalog.Fragmentation);
        long? live = frag is null ? null : results.Cells.Where(c => c.Workload == frag.Id).Select(c => c.PeakLiveBytes).FirstOrDefault(v => v is not null);
        Row(sb, results, "2-thread / 1-thread throughput, working set (2.00 = perfect)", s => s.ThreadScaling, Format.Plain);
        Row(sb, results, "fragmentation: peak RSS / peak live bytes" + (live is long l ? $" ({Format.Bytes(l)} live)" : ""),
            s => s.FragmentationRssPerLiveByte, Format.Plain);
        if (sb.Length == 0) return "";
        var head = new StringBuilder();
        TableHead(head, results, "figure");
        return head.Append(sb).ToString();
    }

    private static void Row(StringBuilder sb, BenchResults results, string label, Func<AllocatorSummary, double?> pick,
        Func<double, string> format)
    {
        if (!results.Summaries.Any(s => pick(s) is not null)) return;
        sb.Append("| ").Append(label).Append(" |");
        foreach (var a in results.Allocators)
        {
            var s = results.Summary(a.Name);
            sb.Append(' ').Append(a.Available && s is not null && pick(s) is double v ? format(v) : "—").Append(" |");
        }
        sb.AppendLine();
    }

    private static string OverheadTable(BenchResults results, StatsOverhead overhead)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| workload | time ratio | cost |");
        sb.AppendLine("|---|---:|---:|");
        foreach (var r in overhead.Workloads)
        {
            string title = results.Workloads.FirstOrDefault(w => w.Id == r.Workload)?.Title ?? r.Workload;
            sb.AppendLine(r.Ratio is double v
                ? $"| {Escape(title)} | {Format.Ratio(v)} | {Format.Percent(v)} |"
                : $"| {Escape(title)} | — | — |");
        }
        sb.AppendLine(overhead.GeometricMean is double g
            ? $"| **geometric mean** | **{Format.Ratio(g)}** | **{Format.Percent(g)}** |"
            : "| **geometric mean** | — | — |");
        return sb.ToString();
    }

    /// <summary>A row per workload: its title, then one cell per allocator as <paramref name="cell"/>
    /// writes it from the workload's result under that allocator (null when there is none).</summary>
    private static void WorkloadRows(StringBuilder sb, BenchResults results, IEnumerable<WorkloadInfo> workloads,
                                     Func<CellResult?, AllocatorInfo, string> cell)
    {
        foreach (var w in workloads)
        {
            sb.Append("| ").Append(Escape(Title(w))).Append(" |");
            foreach (var a in results.Allocators)
                sb.Append(' ').Append(cell(results.Cell(w.Id, a.Name), a)).Append(" |");
            sb.AppendLine();
        }
    }

    private static void TableHead(StringBuilder sb, BenchResults results, string firstColumn = "workload")
    {
        sb.Append("| ").Append(firstColumn).Append(" |");
        foreach (var a in results.Allocators) sb.Append(' ').Append(a.Name).Append(" |");
        sb.AppendLine();
        sb.Append("|---|");
        foreach (var _ in results.Allocators) sb.Append("---:|");
        sb.AppendLine();
    }

    private static string Cell(CellResult? c, AllocatorInfo a, string? value, double? ratio)
    {
        if (!a.Available || c is null || c.Status == CellStatus.NotInstalled) return "not installed";
        if (c.Status == CellStatus.Unavailable) return "n/a";
        if (value is null) return $"**FAILED** ({Escape(ShortReason(c))})";
        string text = a.IsBaseline || ratio is not double r ? value : $"{value} ({Format.Ratio(r)})";
        if (c.Status == CellStatus.Failed)
            text += $" ⚠ {c.Runs.Count - c.SucceededRuns}/{c.Runs.Count} failed";
        return text;
    }

    private static string ShortReason(CellResult c)
    {
        string? error = c.Runs.FirstOrDefault(r => !r.Succeeded)?.Error;
        if (error is null) return "no run";
        int colon = error.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? error[..colon] : error;
    }

    private static string Header(BenchEnvironment env)
    {
        var parts = new List<string>
        {
            env.StartedAt.ToString("yyyy-MM-dd HH:mm zzz", CultureInfo.InvariantCulture),
            $"{env.Cpu}, {env.Cores} cores",
            "Linux " + env.Kernel,
        };
        if (env.Glibc is not null) parts.Add("glibc " + env.Glibc);
        if (env.Compiler is not null) parts.Add(env.Compiler);
        var line2 = string.Create(CultureInfo.InvariantCulture,
            $"{(env.Quick ? "quick" : "normal")} mode (scale {env.Scale}), {env.Rounds} round{(env.Rounds == 1 ? "" : "s")}, " +
            $"each running every workload under every allocator once in a shuffled order (seed {env.Seed}); " +
            $"took {Format.Duration(env.Duration)}. Times are medians of wall time, fork to exit; RSS is the peak (ru_maxrss).");
        if (env.OtherCpuLoadMedian is double load)
            line2 += string.Create(CultureInfo.InvariantCulture,
                $" Other processes used a median {load * 100:0}% (at most {env.OtherCpuLoadMax * 100:0}%) of the CPUs during the runs") +
                (load > ResultsBuilder.BusyMachineThreshold ? ": **the machine was busy, the times are noisy**." : ".");
        if (env.RepeatedRuns > 0)
            line2 += string.Create(CultureInfo.InvariantCulture,
                $" {env.RepeatedRuns} run{(env.RepeatedRuns == 1 ? " was" : "s were")} made again after the rounds because other processes used more than {env.MaxOtherCpuLoad * 100:0}% of the CPUs meanwhile (the least disturbed attempt counts).");
        return string.Join(" · ", parts) + "  \n" + line2;
    }

    private static string Escape(string s) => s.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
