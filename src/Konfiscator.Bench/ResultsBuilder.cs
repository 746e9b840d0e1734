namespace Konfiscator.Bench;

/// <summary>Turns the runs into cells, summaries and the stats-overhead figures.</summary>
internal static class ResultsBuilder
{
    /// <summary>Above this median share of the CPUs used by other processes, the report warns.</summary>
    public const double BusyMachineThreshold = 0.10;

    public static BenchResults Build(
        BenchEnvironment environment,
        IReadOnlyList<AllocatorInfo> allocators,
        IReadOnlyList<WorkloadInfo> workloads,
        IReadOnlyList<RunSample> samples,
        IReadOnlyDictionary<string, string>? unavailableWorkloads = null,
        IEnumerable<string>? extraProblems = null)
    {
        var problems = new List<string>(extraProblems ?? []);
        foreach (var a in allocators.Where(a => !a.Available))
            problems.Add($"{a.Name}: {a.Note}");
        if (unavailableWorkloads is not null)
            foreach (var (w, why) in unavailableWorkloads)
                problems.Add($"{w}: {why}");

        samples = CheckOutputs(samples);

        var cells = new List<CellResult>();
        // Per allocator, per workload: the time ratio to glibc in each round (RoundRatios).
        var roundRatios = new Dictionary<string, Dictionary<string, Dictionary<int, double>>>();
        foreach (var w in workloads)
        {
            var baseline = Medians(samples, w.Id, AllocatorCatalog.Glibc);
            var glibcRounds = RoundWalls(samples.Where(s => s.Workload == w.Id && s.Allocator == AllocatorCatalog.Glibc && s.Succeeded));
            double? baselinePerPair = NsPerPair(samples.Where(s => s.Workload == w.Id && s.Allocator == AllocatorCatalog.Glibc && s.Succeeded));
            foreach (var a in allocators)
            {
                if (!a.Available)
                {
                    cells.Add(new CellResult { Workload = w.Id, Allocator = a.Name, Status = CellStatus.NotInstalled, Note = "not installed" });
                    continue;
                }
                if (unavailableWorkloads is not null && unavailableWorkloads.TryGetValue(w.Id, out string? why))
                {
                    cells.Add(new CellResult { Workload = w.Id, Allocator = a.Name, Status = CellStatus.Unavailable, Note = why });
                    continue;
                }
                var runs = samples.Where(s => s.Workload == w.Id && s.Allocator == a.Name).OrderBy(s => s.Sequence).ToList();
                var ok = runs.Where(s => s.Succeeded).ToList();
                var m = Medians(ok);
                var failed = runs.Where(s => !s.Succeeded).ToList();
                long? live = ok.Select(s => s.PeakLiveBytes).FirstOrDefault(v => v is > 0);
                double? perPair = NsPerPair(ok);
                var rounds = RoundRatios(ok, glibcRounds);
                if (!roundRatios.TryGetValue(a.Name, out var byWorkload)) roundRatios[a.Name] = byWorkload = [];
                byWorkload[w.Id] = rounds;
                cells.Add(new CellResult
                {
                    Workload = w.Id,
                    Allocator = a.Name,
                    Status = failed.Count > 0 || runs.Count == 0 ? CellStatus.Failed : CellStatus.Ok,
                    Runs = runs,
                    SucceededRuns = ok.Count,
                    MedianWallSeconds = m.Wall,
                    MinWallSeconds = ok.Count > 0 ? ok.Min(s => s.WallSeconds) : null,
                    MaxWallSeconds = ok.Count > 0 ? ok.Max(s => s.WallSeconds) : null,
                    TimeRatio = BenchStatistics.Ratio(m.Wall, baseline.Wall),
                    RoundRatioLow = rounds.Count > 0 ? rounds.Values.Min() : null,
                    RoundRatioHigh = rounds.Count > 0 ? rounds.Values.Max() : null,
                    MedianPeakRssBytes = m.Rss is double r ? (long)Math.Round(r) : null,
                    RssRatio = BenchStatistics.Ratio(m.Rss, baseline.Rss),
                    PeakLiveBytes = live,
                    RssPerLiveByte = BenchStatistics.Ratio(m.Rss, live),
                    NsPerPair = perPair,
                    NsPerPairRatio = BenchStatistics.Ratio(perPair, baselinePerPair),
                    Note = failed.Count > 0 ? $"{failed.Count}/{runs.Count} runs failed: {failed[0].Error}"
                         : runs.Count == 0 ? "no run" : null,
                });
                foreach (var f in failed)
                    problems.Add($"{w.Id} under {a.Name}, round {f.Round}: {f.Error}");
            }
        }

        var summaries = new List<AllocatorSummary>();
        foreach (var a in allocators)
        {
            var mine = cells.Where(c => c.Allocator == a.Name).ToList();
            var timeRatios = mine.Where(c => c.TimeRatio is > 0).Select(c => c.TimeRatio!.Value).ToList();
            var rssRatios = mine.Where(c => c.TimeRatio is > 0 && c.RssRatio is > 0).Select(c => c.RssRatio!.Value).ToList();
            var perRound = RoundGeometricMeans(roundRatios.GetValueOrDefault(a.Name));
            summaries.Add(new AllocatorSummary
            {
                Allocator = a.Name,
                TimeRatioGeometricMean = timeRatios.Count > 0 ? BenchStatistics.GeometricMean(timeRatios) : null,
                RssRatioGeometricMean = rssRatios.Count > 0 ? BenchStatistics.GeometricMean(rssRatios) : null,
                RoundGeometricMeanLow = perRound.Count > 0 ? perRound.Min() : null,
                RoundGeometricMeanHigh = perRound.Count > 0 ? perRound.Max() : null,
                WorkloadsCounted = timeRatios.Count,
                WorkloadsFailed = mine.Count(c => c.Status == CellStatus.Failed),
                ThreadScaling = BenchStatistics.ThreadScaling(
                    mine.FirstOrDefault(c => c.Workload == WorkloadCatalog.WorkingSet1)?.MedianWallSeconds,
                    mine.FirstOrDefault(c => c.Workload == WorkloadCatalog.WorkingSet2)?.MedianWallSeconds, 2),
                FragmentationRssPerLiveByte = mine.FirstOrDefault(c => c.Workload == WorkloadCatalog.Fragmentation)?.RssPerLiveByte,
            });
        }

        StatsOverhead? overhead = null;
        if (allocators.Any(a => a.Name == AllocatorCatalog.Konfiscator && a.Available) &&
            allocators.Any(a => a.Name == AllocatorCatalog.KonfiscatorNoStats && a.Available))
        {
            var ratios = workloads.Select(w => new WorkloadRatio(w.Id, BenchStatistics.Ratio(
                cells.FirstOrDefault(c => c.Workload == w.Id && c.Allocator == AllocatorCatalog.Konfiscator)?.MedianWallSeconds,
                cells.FirstOrDefault(c => c.Workload == w.Id && c.Allocator == AllocatorCatalog.KonfiscatorNoStats)?.MedianWallSeconds)))
                .ToList();
            var present = ratios.Where(r => r.Ratio is > 0).Select(r => r.Ratio!.Value).ToList();
            overhead = new StatsOverhead(ratios, present.Count > 0 ? BenchStatistics.GeometricMean(present) : null);
        }

        var loads = samples.Select(s => s.OtherCpuLoad).OfType<double>().ToList();
        if (loads.Count > 0)
        {
            environment = environment with { OtherCpuLoadMedian = BenchStatistics.Median(loads), OtherCpuLoadMax = loads.Max() };
            if (environment.OtherCpuLoadMedian > BusyMachineThreshold)
                problems.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"the machine was busy: other processes used a median {environment.OtherCpuLoadMedian * 100:0}% of the CPUs ") +
                    "during the runs, so the times are noisy (run again when it is quiet, or with more rounds)");
        }

        return new BenchResults
        {
            Environment = environment,
            Allocators = allocators,
            Workloads = workloads,
            Cells = cells,
            Summaries = summaries,
            StatsOverhead = overhead,
            Problems = problems,
        };
    }

    /// <summary>The wall time of each round's run (one run a round: a repeated run keeps its round).</summary>
    private static Dictionary<int, double> RoundWalls(IEnumerable<RunSample> ok) =>
        ok.GroupBy(s => s.Round).ToDictionary(g => g.Key, g => g.First().WallSeconds);

    /// <summary>Each round's run over glibc's run of the same round, for the rounds where both succeeded.</summary>
    private static Dictionary<int, double> RoundRatios(IEnumerable<RunSample> ok, Dictionary<int, double> glibcRounds) =>
        RoundWalls(ok).Where(r => glibcRounds.TryGetValue(r.Key, out double g) && g > 0)
                      .ToDictionary(r => r.Key, r => r.Value / glibcRounds[r.Key]);

    /// <summary>One geometric mean a round over the workloads that have a ratio in every round
    /// (so that the rounds' means cover the same workloads); empty when there is none.</summary>
    private static List<double> RoundGeometricMeans(Dictionary<string, Dictionary<int, double>>? byWorkload)
    {
        if (byWorkload is null) return [];
        var rounds = byWorkload.Values.SelectMany(r => r.Keys).Distinct().Order().ToList();
        var complete = byWorkload.Values.Where(r => r.Count > 0 && rounds.All(r.ContainsKey)).ToList();
        if (complete.Count == 0) return [];
        return rounds.Select(round => BenchStatistics.GeometricMean(complete.Select(r => r[round]).ToList())).ToList();
    }

    private static (double? Wall, double? Rss) Medians(IReadOnlyList<RunSample> samples, string workload, string allocator) =>
        Medians(samples.Where(s => s.Workload == workload && s.Allocator == allocator && s.Succeeded).ToList());

    /// <summary>Median wall time and peak RSS of successful runs.</summary>
    private static (double? Wall, double? Rss) Medians(IReadOnlyList<RunSample> ok)
    {
        if (ok.Count == 0) return (null, null);
        return (BenchStatistics.Median(ok.Select(s => s.WallSeconds)), BenchStatistics.Median(ok.Select(s => (double)s.PeakRssBytes)));
    }

    /// <summary>Median of the workload's own loop time per malloc+free pair (ns), over the runs that
    /// report both; null when none does.</summary>
    private static double? NsPerPair(IEnumerable<RunSample> ok)
    {
        var values = ok.Where(s => s.WorkloadSeconds is > 0 && s.Pairs is > 0)
                       .Select(s => s.WorkloadSeconds!.Value * 1e9 / s.Pairs!.Value).ToList();
        return values.Count > 0 ? BenchStatistics.Median(values) : null;
    }

    /// <summary>Every workload's checksum depends only on its fixed inputs, so every allocator must
    /// produce the same one. The reference is glibc's (the most common among its runs), else the
    /// most common of all; a run with another checksum gave wrong output and fails.</summary>
    internal static IReadOnlyList<RunSample> CheckOutputs(IReadOnlyList<RunSample> samples)
    {
        var reference = new Dictionary<string, string>();
        foreach (var group in samples.Where(s => s.Succeeded && s.Checksum is not null).GroupBy(s => s.Workload))
        {
            var pool = group.Where(s => s.Allocator == AllocatorCatalog.Glibc).ToList();
            if (pool.Count == 0) pool = group.ToList();
            reference[group.Key] = pool.GroupBy(s => s.Checksum!).OrderByDescending(g => g.Count()).First().Key;
        }
        return samples.Select(s =>
            s.Succeeded && s.Checksum is not null && reference.TryGetValue(s.Workload, out string? expected) && s.Checksum != expected
                ? s with { Succeeded = false, Error = $"wrong output: checksum {s.Checksum}, glibc's is {expected}" }
                : s).ToList();
    }
}
