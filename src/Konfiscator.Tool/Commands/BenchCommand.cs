using System.CommandLine;
using Konfiscator.Tool.Cli;
using Konfiscator.Bench;
using Konfiscator.Bench.Reports;
using Spectre.Console;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator bench [--quick] [--rounds N] [--workloads A,B] [--allocators A,B]
/// [--library NAME=PATH]... [--nostats] [--out DIR]</c>: the same workloads under glibc, konfiscator, jemalloc, mimalloc and tcmalloc in one
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
                r.AddError($"--rounds {r.Tokens[^1].Value}: give a positive number of rounds");
        });
        var seed = new Option<int>("--seed") { Description = "Seed of the shuffled run order", DefaultValueFactory = _ => 1, HelpName = "N" };
        var workloads = new Option<string?>("--workloads")
        {
            Description = "Comma-separated subset of: " + string.Join(",", BenchmarkRunner.Workloads.Select(w => w.Id)),
            HelpName = "A,B",
        };
        workloads.Validators.Add(r =>
        {
            var known = BenchmarkRunner.Workloads.Select(w => w.Id).ToHashSet(StringComparer.Ordinal);
            foreach (string name in Split(r.Tokens.Count > 0 ? r.Tokens[^1].Value : null) ?? [])
                if (!known.Contains(name))
                    r.AddError($"--workloads: no workload '{name}'; the workloads are {string.Join(", ", known)}");
        });
        var allocators = new Option<string?>("--allocators")
        {
            Description = "Comma-separated subset of: " + string.Join(",", BenchmarkRunner.AllocatorNames),
            HelpName = "A,B",
        };
        var libraries = new Option<string[]>("--library")
        {
            Description = "Also run this library under NAME, interleaved with the others (another build of libkonfiscator.so, " +
                          "to compare builds in one run); may be repeated",
            HelpName = "NAME=PATH",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        libraries.Validators.Add(r =>
        {
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var token in r.Tokens)
            {
                if (NamedLibrary.Parse(token.Value) is not NamedLibrary library)
                    r.AddError($"--library {token.Value}: give NAME=PATH, e.g. --library before=/tmp/old/libkonfiscator.so");
                else if (BenchmarkRunner.CheckLibraryName(library.Name) is string problem)
                    r.AddError($"--library {token.Value}: {problem}");
                else if (!names.Add(library.Name))
                    r.AddError($"--library {token.Value}: '{library.Name}' names another --library already (names must differ in more than case)");
                else if (!File.Exists(library.Path))
                    r.AddError($"--library {token.Value}: no file at {library.Path}");
            }
        });
        var noStats = new Option<bool>("--nostats") { Description = $"Also run konfiscator with {Konfiscator.Stats.StatsSchema.PublishVariable}=0 (the cost of publishing, as a ratio)" };
        var output = new Option<string>("--out")
        {
            Description = "Directory for bench.md, bench.json and bench.svg",
            DefaultValueFactory = _ => "bench-results",
            HelpName = "DIR",
        };
        var bench = new Command("bench", "Benchmark konfiscator against glibc, jemalloc, mimalloc and tcmalloc")
        {
            quick, rounds, seed, workloads, allocators, libraries, noStats, output,
        };
        Help.Examples(bench,
            ("konfiscator bench --quick", "seconds: checks the harness, measures nothing"),
            ("konfiscator bench --nostats --out bench-results", "the full run (minutes), with the cost of statistics"),
            ("konfiscator bench --workloads fifo,lifo --allocators glibc,konfiscator", "a subset"),
            ("konfiscator bench --allocators glibc,konfiscator --library before=/tmp/old/libkonfiscator.so",
             "this build against an earlier one, in one interleaved run"));
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
                Libraries = (parse.GetValue(libraries) ?? []).Select(t => NamedLibrary.Parse(t)!).ToList(),
                KonfiscatorLibrary = ToolPaths.Library(),
                WorkDirectory = CacheDirectory,
            };
            return await RunAsync(options, parse.GetValue(output)!, cancel);
        });
        return bench;
    }

    /// <summary>Compiled workloads are kept here between runs (they are rebuilt only when their
    /// source changes); the path is printed after every run and may be deleted at any time.</summary>
    private static string CacheDirectory =>
        Path.Combine(Path.GetTempPath(), "konfiscator-bench-" + Reader.StatsDirectory.EffectiveUid.ToString(System.Globalization.CultureInfo.InvariantCulture));

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
                // The harness names the parameter for programmers; a user needs only the sentence.
                string message = e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "");
                throw new ToolException(message, ExitCodes.Usage);
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
            Console.WriteLine($"cache:  {options.WorkDirectory} (compiled workloads, reused by the next run; safe to delete)");
            // The report's warnings, on screen too: nobody should quote these figures unwarned.
            if (results.Environment.Quick)
                Console.Error.WriteLine("konfiscator bench: warning: quick mode (sizes ÷10, one round): a smoke test of the harness, not a measurement");
            foreach (string problem in results.Problems)
                Console.Error.WriteLine($"konfiscator bench: warning: {problem}");
            // Exit 1 only when glibc's or Konfiscator's runs failed; another allocator's failure is its own
            // bug (it is in the table and in the warnings above) and should not fail a scripted run.
            return results.HasOwnFailures ? ExitCodes.Failure : ExitCodes.Ok;
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
