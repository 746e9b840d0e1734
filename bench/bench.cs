#!/usr/bin/env -S dotnet run
// A stand-alone entry point to the harness engine (src/Konfiscator.Bench), for working on the
// workloads before and beside `konfiscator bench`:
//
//   dotnet run bench/bench.cs -- [--quick] [--rounds N] [--seed N] [--workloads a,b] [--allocators a,b]
//                                [--nostats] [--lib PATH] [--library NAME=PATH]... [--out DIR]
//
// Progress goes to stderr; the Markdown report to stdout; bench.md, bench.json and bench.svg to
// --out (default bench/results/). Exit status 1 when any run failed.
#:project ../src/Konfiscator.Bench/Konfiscator.Bench.csproj
#:property TargetFramework=net10.0

using Konfiscator.Bench;
using Konfiscator.Bench.Reports;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

var options = new BenchOptions();
string outDir = Path.Combine(Path.GetDirectoryName(ScriptPath()) ?? ".", "results");
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        int Number()
        {
            string flag = args[i], value = Next();
            return int.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int n)
                ? n : throw new ArgumentException($"{flag} {value}: not a number");
        }
        switch (args[i])
        {
            case "--quick": options = options with { Quick = true }; break;
            case "--rounds": options = options with { Rounds = Number() }; break;
            case "--seed": options = options with { Seed = Number() }; break;
            case "--workloads": options = options with { Workloads = Next().Split(',') }; break;
            case "--allocators": options = options with { Allocators = Next().Split(',') }; break;
            case "--nostats": options = options with { IncludeNoStats = true }; break;
            case "--lib": options = options with { KonfiscatorLibrary = Next() }; break;
            case "--library":
            {
                var library = NamedLibrary.Parse(Next()) ?? throw new ArgumentException("--library needs NAME=PATH");
                options = options with { Libraries = [.. options.Libraries ?? [], library] };
                break;
            }
            case "--out": outDir = Next(); break;
            default:
                Console.Error.WriteLine($"unknown option {args[i]}; workloads: {string.Join(",", BenchmarkRunner.Workloads.Select(w => w.Id))}; " +
                                        $"allocators: {string.Join(",", BenchmarkRunner.AllocatorNames)}");
                return 2;
        }
    }
}
catch (ArgumentException e)
{
    // A bad value is a usage error, one line, not a stack trace.
    Console.Error.WriteLine($"bench.cs: {e.Message}");
    return 2;
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var progress = new Progress(p =>
{
    if (p.Phase != BenchPhase.Running || p.LastRun is not null)
        Console.Error.WriteLine(p.Phase == BenchPhase.Running
            ? $"[{p.CompletedRuns,3}/{p.TotalRuns}] {p.Elapsed:mm\\:ss} {p.Message}"
            : $"{p.Elapsed:mm\\:ss} {p.Message}");
});
BenchResults results;
try
{
    results = await BenchmarkRunner.RunAsync(options, progress, cts.Token);
}
catch (ArgumentException e)
{
    // An unknown workload or allocator, a library's name: the engine's sentence, without its parameter.
    Console.Error.WriteLine($"bench.cs: {(e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", ""))}");
    return 2;
}
catch (BenchmarkException e)
{
    Console.Error.WriteLine($"bench.cs: {e.Message}");
    return 1;
}
var paths = await ReportFiles.WriteAllAsync(results, outDir);
Console.WriteLine(MarkdownReport.Write(results));
Console.Error.WriteLine($"wrote {paths.Markdown}, {paths.Json}, {paths.Svg}");
return results.HasOwnFailures ? 1 : 0;

static string ScriptPath([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

sealed class Progress(Action<BenchProgress> report) : IProgress<BenchProgress>
{
    public void Report(BenchProgress value) => report(value);
}
