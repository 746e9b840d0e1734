using System.CommandLine;
using Konfiscator.Tool.Cli;
using Konfiscator.Reader;
using Konfiscator.Reader.Interop;
using Konfiscator.Tool.Metrics;
using Konfiscator.Tool.Output;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator run [--listen ADDR:PORT | --no-serve] [--per-pid] [--hold] -- CMD [ARGS...]</c>: runs CMD
/// with libkonfiscator.so preloaded, serves the metrics of CMD and every preloaded child while
/// they run, forwards signals, prints a summary when CMD ends and exits with CMD's status.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var listen = SharedOptions.Listen();
        var perPid = SharedOptions.PerPid();
        var hold = new Option<bool>("--hold")
        {
            Description = "Keep serving the final metrics after CMD exits, until Ctrl-C (SIGINT) or SIGTERM",
        };
        var noServe = new Option<bool>("--no-serve")
        {
            Description = "Open no port: run CMD and print the summary when it exits",
        };
        var command = new Argument<string[]>("CMD")
        {
            Arity = ArgumentArity.ZeroOrMore,
            HelpName = "CMD [ARGS...]",
            Description = "The program to run and its arguments, after --. Without one: the demo program konf-driver, with --hold",
        };
        var run = new Command("run", "Run a program with the allocator preloaded, serve its metrics while it runs, and print a summary when it exits")
        {
            listen, perPid, hold, noServe, command,
        };
        Help.Examples(run,
            ("konfiscator run", "the demo program; metrics stay on :8000 until Ctrl-C"),
            ("konfiscator run -- python3 app.py", "any dynamically linked program; exits with its status"),
            ("konfiscator run --listen 127.0.0.1:0 -- make -j4", "a free port; make and every child it starts"),
            ("konfiscator run --no-serve -- ./app", "no port; the summary when it exits, and ps, top or stats meanwhile"),
            ("konfiscator run --hold --per-pid -- sh -c 'ls; sort x'", "one series per process, kept after exit"));
        // At parse time, so that these are usage errors with the generated usage line.
        run.Validators.Add(result =>
        {
            if (!result.GetValue(noServe)) return;
            if (result.GetValue(hold))
                result.AddError("--hold keeps serving the metrics; it cannot go with --no-serve");
            if (result.GetResult(listen) is { Implicit: false })
                result.AddError("--listen and --no-serve contradict each other");
        });
        run.SetAction((parse, cancel) =>
        {
            bool quiet = parse.GetValue(noServe);
            return RunAsync(
                quiet ? null : SharedOptions.ParseListen(parse.GetValue(listen)!),
                parse.GetValue(perPid),
                parse.GetValue(hold),
                parse.GetValue(command) ?? []);
        });
        return run;
    }

    /// <param name="listen">null: serve nothing (--no-serve).</param>
    public static async Task<int> RunAsync(Http.ListenAddress? listen, bool perPid, bool hold, string[] command)
    {
        var err = Console.Error;
        string library = ToolPaths.Library();
        if (!File.Exists(library))
            throw new ToolException(
                $"the allocator library is not at {library}; build it with ./build.sh or point {ToolPaths.LibraryVariable} at libkonfiscator.so",
                ExitCodes.RunFailure);
        bool demo = false;
        if (command.Length == 0)
        {
            string driver = ToolPaths.Driver();
            if (!File.Exists(driver))
                throw new ToolException($"no command given and the demo program is not at {driver}", ExitCodes.RunFailure);
            command = [driver];
            // The demo keeps serving after it ends, unless nothing is served (--no-serve).
            hold = listen is not null;
            demo = true;
        }
        string name = command[0];
        string program = CommandLauncher.Resolve(name);
        if (CommandLauncher.SecureModeHint(name, program) is { } hint)
            err.WriteLine($"konfiscator: {hint}");

        string? shared = Environment.GetEnvironmentVariable(StatsDirectory.DirectoryVariable);
        bool privateDirectory = string.IsNullOrEmpty(shared);
        string directory = privateDirectory ? CreatePrivateDirectory() : shared!;
        if (!privateDirectory && StatsDirectory.EnsureTrusted(directory) is { } problem)
            throw new ToolException(problem, ExitCodes.RunFailure);

        // KONFISCATOR_LEAKS=1: the tool reports the leaks, symbolized, instead of the library.
        bool reportLeaks = Environment.GetEnvironmentVariable(Konfiscator.Stats.StatsSchema.LeaksVariable) == "1";
        var endedTables = new System.Collections.Concurrent.ConcurrentQueue<(ProcessStats, SampleTable)>();
        MetricsHost? host = null;
        // ps, stats, top, heap and the exporter's page find a private directory through the registry.
        using var registration = privateDirectory ? RunRegistry.Register(directory) : null;
        try
        {
            try
            {
                host = await MetricsHost.StartAsync(directory, listen, perPid, requireClaim: false, err,
                    onFold: reportLeaks ? (stats, path) =>
                    {
                        var read = SampleReader.Read(path);
                        if (read.Ok) endedTables.Enqueue((stats, read.Table!));
                    } : null,
                    keepEndedGauges: true);
            }
            catch (ToolException e)
            {
                throw new ToolException(e.Message, ExitCodes.RunFailure);
            }

            string? preload = Environment.GetEnvironmentVariable("LD_PRELOAD");
            var environment = new Dictionary<string, string?>
            {
                ["LD_PRELOAD"] = string.IsNullOrWhiteSpace(preload) ? library : $"{library} {preload}",
                [StatsDirectory.DirectoryVariable] = directory,
            };
            if (reportLeaks) environment[Konfiscator.Stats.StatsSchema.LeaksVariable] = null; // the tool reports them (below)
            using var relay = new SignalRelay();
            var child = CommandLauncher.Start(name, program, command.Skip(1), environment);
            // Only now that the program runs: nothing claims to serve a program that never started.
            err.WriteLine(host.Server is { } server
                ? $"konfiscator: serving the metrics of {Path.GetFileName(name)} at {server.MetricsUrl} (page: {server.PageUrl}; stats directory {directory})"
                : $"konfiscator: running {Path.GetFileName(name)}; stats directory {directory}");
            relay.Started(child);
            await child.WaitForExitAsync();
            relay.Ended();
            // .NET reports a child killed by signal N as 128 + N, as shells do.
            int status = child.ExitCode;
            child.Dispose();

            PrintSummary(host, Path.GetFileName(name), status);
            if (reportLeaks) Profiling.LeakSummary.Write(err, endedTables, new Profiling.Symbolizer());
            if (demo) err.WriteLine(DemoNote);
            if (hold && host.Server is not null)
            {
                err.WriteLine($"konfiscator: still serving the final metrics at {host.Server.MetricsUrl}; press Ctrl-C to stop");
                await relay.Stopped;
            }
            return status;
        }
        finally
        {
            if (host is not null) await host.DisposeAsync();
            if (privateDirectory) RemoveDirectory(directory);
        }
    }

    /// <summary>What the demo program's numbers mean, printed under its summary.</summary>
    public const string DemoNote =
        "konfiscator: the demo put 50 ints each in a malloc of its own, printed them and freed each: 50 mallocs " +
        "of 4 bytes, 50 frees. The one more malloc, still in use at exit, is stdio's output buffer (glibc never frees it).";

    private static void PrintSummary(MetricsHost host, string name, int status)
    {
        var err = Console.Error;
        var snapshot = host.Collect();
        string how = status > 128 && status < 128 + 65 ? $"was killed by signal {status - 128}" : $"exited with status {status}";
        if (snapshot is null || snapshot.Groups.Count == 0)
        {
            err.WriteLine($"konfiscator: {name} {how}; no process published statistics " +
                          $"(statically linked, set-user-ID, or {StatsDirectory.PublishVariable}=0?)");
            return;
        }
        err.WriteLine($"konfiscator: {name} {how}");
        Format.ErrorConsole().Write(SummaryTable.Build(snapshot));
        err.WriteLine(SummaryTable.DefragNote);
    }

    private static void RemoveDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A fresh directory of this run's own (mode 0700), under /dev/shm when it is usable,
    /// else under the temporary directory. A few attempts, then a clear failure.</summary>
    private static string CreatePrivateDirectory()
    {
        const int Attempts = 8;
        bool shm = Directory.Exists("/dev/shm") && Libc.LStat("/dev/shm", out var status) == 0 && status.IsDirectory;
        string? lastProblem = null;
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            // Half the attempts under /dev/shm, the rest under the temporary directory.
            string parent = shm && attempt < Attempts / 2 ? "/dev/shm" : Path.GetTempPath();
            string path = Path.Combine(parent, $"konfiscator-run-{StatsDirectory.EffectiveUid}-{Environment.ProcessId}-{Random.Shared.Next():x8}");
            if (Directory.Exists(path) || File.Exists(path)) continue;
            try
            {
                var info = Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                lastProblem = StatsDirectory.EnsureTrusted(info.FullName);
                if (lastProblem is null) return info.FullName;
                RemoveDirectory(info.FullName);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                lastProblem = $"cannot create {path}: {e.Message}";
            }
        }
        throw new ToolException($"no private stats directory could be made ({lastProblem ?? "every name was taken"})", ExitCodes.RunFailure);
    }
}
