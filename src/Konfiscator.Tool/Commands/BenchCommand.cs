using System.CommandLine;
using Konfiscator.Bench;
using Konfiscator.Bench.Reports;
using Spectre.Console;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator bench [--quick] [--rounds N] [--workloads A,B] [--allocators A,B] [--nostats]
/// [--out DIR]</c>: the same workloads under glibc, konfiscator, jemalloc, mimalloc and tcmalloc in one
/// interleaved run (engine: src/Konfiscator.Bench). Writes bench.md, bench.json and bench.svg.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Sizes ÷10 and one round: a smoke test of the harness (under a minute), not a measurement" };
        var rounds = new Option<int?>("--rounds") { Description = "Interleaved rounds (default 5, quick 1)", HelpName = "N" };
        rounds.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && (!int.TryParse(r.Tokens[^1].Value, out int n) || n < 1))
                r.AddError("--rounds must be a positive number");
        });
        var seed = new Option<int>("--seed") { Description = "Seed of the shuffled run order", DefaultValueFactory = _ => 1, HelpName = "N" };
        var workloads = new Option<string?>("--workloads")
        {
            Description = "Comma-separated subset of: " + string.Join(",", BenchmarkRunner.Workloads.Select(w => w.Id)),
            HelpName = "A,B",
        };
        var allocators = new Option<string?>("--allocators")
        {
            Description = "Comma-separated subset of: " + string.Join(",", BenchmarkRunner.AllocatorNames),
            HelpName = "A,B",
        };
        var noStats = new Option<bool>("--nostats") { Description = "Also run konfiscator with KONFISCATOR_STATS=0 (the cost of publishing, as a ratio)" };
        var output = new Option<string>("--out")
        {
            Description = "Directory for bench.md, bench.json and bench.svg",
            DefaultValueFactory = _ => "bench-results",
            HelpName = "DIR",
        };
        var bench = new Command("bench", "Benchmark konfiscator against glibc, jemalloc, mimalloc and tcmalloc")
        {
            quick, rounds, seed, workloads, allocators, noStats, output,
        };
        bench.SetAction(async (parse, cancel) =>
        {
            var options = new BenchOptions
            {
                Quick = parse.GetValue(quick),
                Rounds = parse.GetValue(rounds),
                Seed = parse.GetValue(seed),
                Workloads = Split(parse.GetValue(workloads)),
                Allocators = Split(parse.GetValue(allocators)),
                IncludeNoStats = parse.GetValue(noStats),
                KonfiscatorLibrary = ToolPaths.Library(),
            };
            return await RunAsync(options, parse.GetValue(output)!, cancel);
        });
        return bench;
    }

    private static IReadOnlyList<string>? Split(string? list) =>
        string.IsNullOrWhiteSpace(list) ? null : list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static async Task<int> RunAsync(BenchOptions options, string outputDirectory, CancellationToken cancel)
    {
        if (!File.Exists(options.KonfiscatorLibrary))
            throw new ToolException($"no library at {options.KonfiscatorLibrary}: run ./build.sh (or set {ToolPaths.LibraryVariable})");
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; interrupt.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            BenchResults results;
            try
            {
                results = AnsiConsole.Profile.Capabilities.Interactive
                    ? await WithProgressBarAsync(options, interrupt.Token)
                    : await BenchmarkRunner.RunAsync(options, new LineProgress(), interrupt.Token);
            }
            catch (ArgumentException e)
            {
                throw new ToolException(e.Message, ExitCodes.Usage);
            }
            catch (BenchmarkException e)
            {
                throw new ToolException(e.Message);
            }
            catch (OperationCanceledException)
            {
                throw new ToolException("interrupted; no report written", 130);
            }
            var paths = await ReportFiles.WriteAllAsync(results, outputDirectory, cancellationToken: CancellationToken.None);
            Console.WriteLine(MarkdownReport.TimeTable(results));
            Console.WriteLine($"report: {paths.Markdown}");
            Console.WriteLine($"        {paths.Json}");
            Console.WriteLine($"chart:  {paths.Svg}");
            return results.HasFailures ? ExitCodes.Failure : ExitCodes.Ok;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>A live progress bar on a terminal.</summary>
    private static async Task<BenchResults> WithProgressBarAsync(BenchOptions options, CancellationToken cancel)
    {
        BenchResults? results = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("preparing", maxValue: 1);
                var progress = new Progress<BenchProgress>(p =>
                {
                    task.Description = Markup.Escape(p.Message.Length > 60 ? p.Message[..60] : p.Message);
                    if (p.TotalRuns > 0)
                    {
                        task.MaxValue = p.TotalRuns;
                        task.Value = p.CompletedRuns;
                    }
                });
                results = await BenchmarkRunner.RunAsync(options, progress, cancel);
                task.Value = task.MaxValue;
            });
        return results!;
    }

    /// <summary>One line per finished run on stderr, for logs and CI.</summary>
    private sealed class LineProgress : IProgress<BenchProgress>
    {
        public void Report(BenchProgress p)
        {
            if (p.Phase != BenchPhase.Running || p.LastRun is not null)
                Console.Error.WriteLine(p.TotalRuns > 0
                    ? $"[{p.CompletedRuns,3}/{p.TotalRuns}] {p.Elapsed:mm\\:ss} {p.Message}"
                    : $"{p.Elapsed:mm\\:ss} {p.Message}");
        }
    }
}
