using System.CommandLine;
using System.Globalization;
using Konfiscator.Reader;
using Konfiscator.Tool.Cli;
using Konfiscator.Tool.Views;
using Spectre.Console;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator top [-p PID | -n NAME] [--interval S] [--once] [--stats-dir DIR]</c>: a
/// refreshing view of one process, as dotnet-counters monitor gives. On a terminal it redraws in
/// place (Spectre.Console's live display) until q, Ctrl-C or the process's end; otherwise (or with
/// --once) it prints plain frames with no escape codes.</summary>
internal static class TopCommand
{
    public static Command Create()
    {
        var pid = ProcessChoice.PidOption();
        var name = ProcessChoice.NameOption();
        var interval = SharedOptions.Interval("Seconds between refreshes", 1.0, 0.1, 3600);
        var once = new Option<bool>("--once") { Description = "Print one frame (rates over one interval) and exit" };
        var statsDir = SharedOptions.StatsDir();
        var top = new Command("top", "Watch one process live: call and byte rates, bytes in use, fragmentation, request sizes")
        {
            pid, name, interval, once, statsDir,
        };
        Help.Examples(top,
            ("konfiscator top", "the most recently started process; q or Ctrl-C leaves"),
            ("konfiscator top -n python3 --interval 2", "the newest live python3, every 2 s"),
            ("konfiscator top -p 4242 --once", "one frame of process 4242, for a log"));
        top.SetAction((parse, cancel) => RunAsync(parse.GetValue(pid), parse.GetValue(name), parse.GetValue(interval),
            parse.GetValue(once), parse.GetValue(statsDir)));
        return top;
    }

    public static async Task<int> RunAsync(int? pid, string? name, double interval, bool once, string? statsDir)
    {
        var chosen = ProcessChoice.Choose(pid, name, statsDir, Console.Error);
        using var stop = new CancellationTokenSource();
        using var signals = new Signals(_ => stop.Cancel());
        var period = TimeSpan.FromSeconds(interval);
        var reader = new Reading(chosen, interval);

        if (once)
        {
            await Delay(period, stop.Token);
            Console.Out.Write(reader.Next());
            return ExitCodes.Ok;
        }
        bool terminal = !Console.IsOutputRedirected && !Console.IsInputRedirected;
        if (!terminal)
        {
            // Plain frames, one after another, for logs and pipes.
            Console.Out.Write(reader.Next());
            while (reader.Live && !stop.IsCancellationRequested)
            {
                await Delay(period, stop.Token);
                if (stop.IsCancellationRequested) break;
                Console.Out.WriteLine();
                Console.Out.Write(reader.Next());
            }
            return ExitCodes.Ok;
        }

        var console = AnsiConsole.Console;
        var keys = Task.Run(() => WatchKeys(stop));
        await console.Live(new Text(reader.Next())).AutoClear(false).StartAsync(async context =>
        {
            while (!stop.IsCancellationRequested && reader.Live)
            {
                await Delay(period, stop.Token);
                if (stop.IsCancellationRequested) break;
                // Text, never markup: a process name is anyone's choice.
                context.UpdateTarget(new Text(reader.Next()));
                context.Refresh();
            }
        });
        stop.Cancel();
        return ExitCodes.Ok;
    }

    private static async Task Delay(TimeSpan period, CancellationToken cancel)
    {
        try
        {
            await Task.Delay(period, cancel);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static void WatchKeys(CancellationTokenSource stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (Console.KeyAvailable)
            {
                var key = Console.ReadKey(intercept: true);
                if (key.KeyChar is 'q' or 'Q' || (key.Key == ConsoleKey.C && key.Modifiers.HasFlag(ConsoleModifiers.Control)))
                    stop.Cancel();
            }
            else Thread.Sleep(50);
        }
    }

    /// <summary>Successive readings of one process image, each rendered against the one before (the
    /// first against the reading made when the process was chosen, or since start when that was just now).</summary>
    private sealed class Reading(Publisher publisher, double interval)
    {
        private ProcessStats _previous = publisher.Stats;
        private readonly TopSites _sites = new(publisher.SegmentPath, publisher.Stats.Pid, publisher.Stats.Command);
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        public bool Live { get; private set; } = publisher.Live;

        public string Next()
        {
            var now = ProcessChoice.Reread(publisher);
            if (now is null || !ProcFs.Instance.IsRunning(now.Pid, now.StartTime)) Live = false;
            now ??= _previous;
            double seconds = _clock.Elapsed.TotalSeconds;
            var map = HeapMapReader.Read(publisher.SegmentPath);
            string frame = TopFrame.Render(publisher, now, seconds >= 0.05 ? _previous : null, seconds, map, interval, Live, _sites.Render());
            _previous = now;
            _clock.Restart();
            return frame;
        }
    }
}
