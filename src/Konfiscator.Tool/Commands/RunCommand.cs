using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Konfiscator.Reader;
using Konfiscator.Reader.Interop;
using Konfiscator.Tool.Metrics;
using Konfiscator.Tool.Output;
using Spectre.Console;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator run [--listen ADDR:PORT] [--per-pid] [--hold] -- CMD [ARGS...]</c>: runs CMD
/// with libkonfiscator.so preloaded, serves the figures of CMD and every preloaded child while
/// they run, forwards signals, prints a summary when CMD ends and exits with CMD's status.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var listen = Cli.ListenOption();
        var perPid = Cli.PerPidOption();
        var hold = new Option<bool>("--hold")
        {
            Description = "Keep serving the final figures after CMD exits, until Ctrl-C (SIGINT) or SIGTERM",
        };
        var noServe = new Option<bool>("--no-serve")
        {
            Description = "Open no port: run CMD and print the summary when it exits",
        };
        var command = new Argument<string[]>("CMD")
        {
            Arity = ArgumentArity.ZeroOrMore,
            HelpName = "CMD [ARGS...]",
            Description = "The program to run and its arguments, after --. Without one: the seed's driver program, and --hold",
        };
        var run = new Command("run", "Run a program under konfiscator, serve its figures while it runs, and summarize them when it exits")
        {
            listen, perPid, hold, noServe, command,
        };
        run.SetAction((parse, cancel) =>
        {
            bool quiet = parse.GetValue(noServe);
            if (quiet && parse.GetValue(hold))
                throw new ToolException("--hold keeps serving the figures; it cannot go with --no-serve", ExitCodes.Usage);
            if (quiet && parse.GetResult(listen) is { Implicit: false })
                throw new ToolException("--listen and --no-serve contradict each other", ExitCodes.Usage);
            return RunAsync(
                quiet ? null : Cli.ParseListen(parse.GetValue(listen)!),
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
        if (command.Length == 0)
        {
            string driver = ToolPaths.Driver();
            if (!File.Exists(driver))
                throw new ToolException($"no command given and the seed's driver is not at {driver}", ExitCodes.RunFailure);
            command = [driver];
            hold = listen is not null;
        }

        string? shared = Environment.GetEnvironmentVariable(StatsDirectory.DirectoryVariable);
        bool privateDirectory = string.IsNullOrEmpty(shared);
        string directory = privateDirectory ? CreatePrivateDirectory() : shared!;
        if (!privateDirectory && StatsDirectory.EnsureTrusted(directory) is { } problem)
            throw new ToolException(problem, ExitCodes.RunFailure);

        // KONFISCATOR_LEAKS=1: the tool reports the leaks, symbolized, instead of the library.
        bool reportLeaks = Environment.GetEnvironmentVariable("KONFISCATOR_LEAKS") == "1";
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
                    } : null);
            }
            catch (ToolException e)
            {
                throw new ToolException(e.Message, ExitCodes.RunFailure);
            }
            err.WriteLine(host.Server is { } server
                ? $"konfiscator: serving the figures of {Path.GetFileName(command[0])} at {server.MetricsUrl} (page: {server.PageUrl}; stats directory {directory})"
                : $"konfiscator: running {Path.GetFileName(command[0])}; stats directory {directory}");

            var start = new ProcessStartInfo(command[0]) { UseShellExecute = false };
            foreach (string arg in command.Skip(1)) start.ArgumentList.Add(arg);
            string? preload = Environment.GetEnvironmentVariable("LD_PRELOAD");
            start.Environment["LD_PRELOAD"] = string.IsNullOrWhiteSpace(preload) ? library : $"{library} {preload}";
            start.Environment[StatsDirectory.DirectoryVariable] = directory;
            if (reportLeaks) start.Environment.Remove("KONFISCATOR_LEAKS");

            // Signals: before the command starts, remembered and delivered once it runs; while it
            // runs, forwarded; after it ends (--hold), they stop the tool.
            Process? running = null;
            int pendingSignal = 0;
            bool ended = false;
            var gate = new object();
            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            bool keyboardReachesChild = Signals.KeyboardSignalsReachChild();
            using var signals = new Signals(signal =>
            {
                lock (gate)
                {
                    if (ended)
                    {
                        stop.TrySetResult();
                        return;
                    }
                    // Ctrl-C and Ctrl-\ from the terminal already went to the child (same process group).
                    if (keyboardReachesChild && signal is PosixSignal.SIGINT or PosixSignal.SIGQUIT) return;
                    if (running is null) pendingSignal = Signals.Number(signal);
                    else Libc.Kill(running.Id, Signals.Number(signal));
                }
            });
            Process child;
            try
            {
                child = Process.Start(start) ?? throw new ToolException($"cannot start {command[0]}", ExitCodes.CannotExecute);
            }
            catch (Win32Exception e)
            {
                throw new ToolException($"{command[0]}: {e.Message}",
                    e.NativeErrorCode == 2 ? ExitCodes.NotFound : ExitCodes.CannotExecute);
            }
            lock (gate)
            {
                running = child;
                if (pendingSignal != 0) Libc.Kill(child.Id, pendingSignal);
            }
            await child.WaitForExitAsync();
            lock (gate)
            {
                running = null;
                ended = true;
            }
            // .NET reports a child killed by signal N as 128 + N, as shells do.
            int status = child.ExitCode;
            child.Dispose();

            var snapshot = host.Collect();
            var console = Format.ErrorConsole();
            string how = status > 128 && status < 128 + 65 ? $"was killed by signal {status - 128}" : $"exited with status {status}";
            if (snapshot is null || snapshot.Groups.Count == 0)
            {
                err.WriteLine($"konfiscator: {Path.GetFileName(command[0])} {how}; no process published figures " +
                              $"(statically linked, or {StatsDirectory.PublishVariable}=0?)");
            }
            else
            {
                err.WriteLine($"konfiscator: {Path.GetFileName(command[0])} {how}");
                console.Write(SummaryTable.Build(snapshot));
            }
            if (reportLeaks) Profiling.LeakSummary.Write(err, endedTables, new Profiling.Symbolizer());

            if (hold && host.Server is not null)
            {
                err.WriteLine($"konfiscator: still serving the final figures at {host.Server.MetricsUrl}; press Ctrl-C to stop");
                await stop.Task;
            }
            return status;
        }
        finally
        {
            if (host is not null) await host.DisposeAsync();
            if (privateDirectory)
            {
                try
                {
                    Directory.Delete(directory, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
    }

    /// <summary>A fresh directory of this run's own (mode 0700), under /dev/shm when it is usable.</summary>
    private static string CreatePrivateDirectory()
    {
        string parent = Directory.Exists("/dev/shm") && Libc.LStat("/dev/shm", out var shm) == 0 && shm.IsDirectory
            ? "/dev/shm"
            : Path.GetTempPath();
        for (int attempt = 0; ; attempt++)
        {
            string path = Path.Combine(parent, $"konfiscator-run-{StatsDirectory.EffectiveUid}-{Environment.ProcessId}-{Random.Shared.Next():x8}");
            if (Directory.Exists(path) || File.Exists(path)) continue;
            try
            {
                var info = Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                if (StatsDirectory.EnsureTrusted(info.FullName) is null) return info.FullName;
            }
            catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && attempt < 3)
            {
                parent = Path.GetTempPath();
            }
        }
    }
}
