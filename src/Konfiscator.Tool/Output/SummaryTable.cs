using Konfiscator.Reader;
using Konfiscator.Stats;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Konfiscator.Tool.Output;

/// <summary>The table <c>konfiscator run</c> prints when its command ends. A few command groups
/// (the command and its preloaded children): one column per group, one row per figure. Many
/// groups (a shell script runs dozens of programs): one row per group with the main figures,
/// the busiest first.</summary>
internal static class SummaryTable
{
    public const int DetailedUpTo = 3;
    public const int RowsUpTo = 15;

    // Entry points shown even when zero: the seed's four and the core ones.
    private static readonly HashSet<string> AlwaysShown =
    [
        "malloc_total", "free_total", "calloc_total", "realloc_total", "mmap_total", "munmap_total", "defrag_total",
        "failed_allocations_total", "allocated_bytes_total", "freed_bytes_total",
    ];

    public static IRenderable Build(Snapshot snapshot)
    {
        var groups = snapshot.Groups.OrderByDescending(g => g[StatsLayout.MallocCalls]).ThenBy(g => g.Command, StringComparer.Ordinal).ToList();
        return groups.Count <= DetailedUpTo ? Detailed(groups) : Compact(groups);
    }

    private static Table Detailed(IReadOnlyList<GroupFigures> groups)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn(new TableColumn(new Text("statistic")).NoWrap());
        foreach (var g in groups)
            table.AddColumn(new TableColumn(new Text(g.Command)).RightAligned());

        void Row(string name, Func<GroupFigures, string> cell) =>
            table.AddRow(new IRenderable[] { new Text(name) }.Concat(groups.Select(g => (IRenderable)new Text(cell(g)))));

        Row("processes", Processes);
        foreach (var figure in Figures.All.Where(f => f.Kind == FigureKind.Counter))
        {
            if (!AlwaysShown.Contains(figure.Name) && groups.All(g => g[figure.Counter] == 0)) continue;
            Row(Label(figure), g => Format.ValueShort(figure, g[figure.Counter]));
        }
        Row("peak bytes in use", g => Format.BytesShort(Peak(g)));
        Row("in use at exit (never freed)", g => g.Exited > 0 ? Format.BytesShort(g.EndedInUseBytes) : "–");
        if (groups.Any(g => g.Live > 0))
        {
            foreach (var figure in Figures.All.Where(f => f.Kind == FigureKind.Gauge && f.Counter != StatsLayout.PeakBytesInUse))
                Row(Label(figure) + " (live)", g => g.Live > 0 ? Format.ValueShort(figure, g[figure.Counter]) : "–");
            foreach (var ratio in Figures.Ratios)
                Row(Label(ratio) + " (live)", g => g.Live > 0 ? Format.Ratio(ratio.Compute(c => g[c])) : "–");
        }
        Row("requests", g => Format.Count(g.HistogramCount));
        Row("request size p50", g => Format.Quantile(g.Histogram, 0.5));
        Row("request size p99", g => Format.Quantile(g.Histogram, 0.99));
        return table;
    }

    private static Table Compact(IReadOnlyList<GroupFigures> groups)
    {
        var table = new Table().Border(TableBorder.Rounded);
        string[] headers = ["command", "procs", "malloc", "free", "defrag", "mmap", "allocated", "peak"];
        table.AddColumn(new TableColumn(new Text(headers[0])).NoWrap());
        foreach (string h in headers.Skip(1)) table.AddColumn(new TableColumn(new Text(h)).RightAligned().NoWrap());

        void Row(string command, ulong processes, Func<int, ulong> value, ulong peak) =>
            table.AddRow(new[]
            {
                command, Format.Count(processes),
                Format.Count(value(StatsLayout.MallocCalls)), Format.Count(value(StatsLayout.FreeCalls)),
                Format.Count(value(StatsLayout.Coalesces)), Format.Count(value(StatsLayout.MmapCalls)),
                Format.BytesShort(value(StatsLayout.BytesAllocated)), Format.BytesShort(peak),
            }.Select(t => (IRenderable)new Text(t)));

        foreach (var g in groups.Take(RowsUpTo))
            Row(g.Command, g.Exited + (ulong)g.Live, c => g[c], Peak(g));
        var rest = groups.Skip(RowsUpTo).ToList();
        if (rest.Count > 0)
            Row($"({rest.Count} more)", rest.Aggregate(0UL, (n, g) => n + g.Exited + (ulong)g.Live),
                c => rest.Aggregate(0UL, (n, g) => n + g[c]), rest.Max(Peak));
        return table;
    }

    private static string Processes(GroupFigures g) => g.Live > 0 ? $"{g.Exited} ended, {g.Live} live" : $"{g.Exited} ended";

    private static ulong Peak(GroupFigures g) => Math.Max(g.EndedPeakBytesInUse, g[StatsLayout.PeakBytesInUse]);

    /// <summary>What the seed's name "defrag" counts, printed wherever the figure is shown.</summary>
    public const string DefragNote = "defrag = coalesces: a freed block merged with a free neighbour (nothing is moved)";

    /// <summary>"fragmentation_ratio" → "fragmentation (1 - largest free / free)".</summary>
    public static string Label(RatioFigure ratio) => ratio.Name switch
    {
        "fragmentation_ratio" => "fragmentation (1 - largest free / free)",
        "mapped_to_in_use_ratio" => "mapped / in use",
        var other => other.Replace('_', ' '),
    };

    /// <summary>"malloc_total" → "malloc", "allocated_bytes_total" → "allocated bytes".</summary>
    public static string Label(Figure figure)
    {
        string name = figure.Name;
        if (name.EndsWith("_total", StringComparison.Ordinal)) name = name[..^"_total".Length];
        return name.Replace('_', ' ') switch
        {
            "defrag" => "defrag (coalesces)",
            "peak in use bytes" => "peak bytes in use",
            "malloc usable size" => "malloc_usable_size",
            "posix memalign" => "posix_memalign",
            "aligned alloc" => "aligned_alloc",
            var other => other,
        };
    }
}
