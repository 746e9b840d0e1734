using System.CommandLine;
using Konfiscator.Tool;
using Konfiscator.Tool.Commands;

return await Cli.RunAsync(args);

namespace Konfiscator.Tool
{
    /// <summary>The command line: <c>run</c>, <c>exporter</c>, <c>stats</c>, <c>ps</c>, <c>top</c>, <c>heap</c>, <c>clean</c>, <c>bench</c>.</summary>
    internal static class Cli
    {
        public static async Task<int> RunAsync(string[] args)
        {
            var root = Build();
            var parse = root.Parse(args);
            if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
            {
                var err = Console.Error;
                foreach (var error in parse.Errors)
                    err.WriteLine($"konfiscator: {error.Message}");
                string path = string.Join(' ', CommandPath(parse.CommandResult.Command));
                err.WriteLine($"Usage: {Usage(parse.CommandResult.Command)}");
                err.WriteLine($"Try '{path} --help' for more information.");
                return ExitCodes.Usage;
            }
            try
            {
                return await parse.InvokeAsync(new InvocationConfiguration
                {
                    // Signals are the commands' business (run forwards them to its child).
                    ProcessTerminationTimeout = null,
                    EnableDefaultExceptionHandler = false,
                });
            }
            catch (ToolException e)
            {
                Console.Error.WriteLine($"konfiscator: {e.Message}");
                return e.ExitCode;
            }
        }

        private static IEnumerable<string> CommandPath(Command command)
        {
            var names = new List<string>();
            for (Symbol? s = command; s is not null; s = s.Parents.FirstOrDefault())
                names.Insert(0, s is RootCommand ? "konfiscator" : s.Name);
            return names;
        }

        private static string Usage(Command command) => command.Name switch
        {
            "run" => "konfiscator run [--listen ADDR:PORT | --no-serve] [--per-pid] [--hold] [-- CMD [ARGS...]]",
            "exporter" => "konfiscator exporter [--listen ADDR:PORT] [--per-pid] [--stats-dir DIR]",
            "stats" => "konfiscator stats [PID | -p PID | -n NAME] [--json] [--stats-dir DIR]",
            "ps" => "konfiscator ps [--interval S] [--json] [--stats-dir DIR]",
            "heap" => "konfiscator heap [PID | -p PID | -n NAME] [--stats-dir DIR]",
            "top" => "konfiscator top [-p PID | -n NAME] [--interval S] [--once] [--stats-dir DIR]",
            "profile" => ProfileCommand.Usage,
            "clean" => "konfiscator clean [--dry-run] [--stats-dir DIR]",
            "bench" => "konfiscator bench [--quick] [--rounds N] [--workloads A,B] [--allocators A,B] [--nostats] [--out DIR]",
            _ => "konfiscator (run | exporter | stats | ps | top | heap | clean | bench) [OPTIONS]",
        };

        public static RootCommand Build()
        {
            var root = new RootCommand(
                "konfiscator: a malloc you can see into. Runs programs under libkonfiscator.so and serves what their heaps do to Prometheus.");
            root.Add(RunCommand.Create());
            root.Add(ExporterCommand.Create());
            root.Add(StatsCommand.Create());
            root.Add(PsCommand.Create());
            root.Add(TopCommand.Create());
            root.Add(HeapCommand.Create());
            root.Add(CleanCommand.Create());
            root.Add(BenchCommand.Create());
            root.Add(ProfileCommand.Create());
            root.SetAction(_ =>
            {
                Console.Error.WriteLine("konfiscator: say which command: run, exporter, stats, ps, top, heap, clean or bench");
                Console.Error.WriteLine($"Usage: {Usage(root)}");
                Console.Error.WriteLine("Try 'konfiscator --help' for more information.");
                return ExitCodes.Usage;
            });
            return root;
        }

        /// <summary>--listen, validated at parse time so a bad address is a usage error.</summary>
        /// <summary>--listen (also Prometheus exporters' usual --web.listen-address). The default
        /// listens on every interface, as the seed's exporter did; the help says so.</summary>
        public static Option<string> ListenOption() => new("--listen", "-l", "--web.listen-address")
        {
            Description = "Address to serve /metrics on, ADDR:PORT. The default :8000 listens on EVERY interface " +
                          "(anyone who can reach this host can read the figures); 127.0.0.1:8000 serves this machine only, " +
                          "the safer choice. Port 0 = any free port",
            HelpName = "ADDR:PORT",
            DefaultValueFactory = _ => Http.ListenAddress.Default,
            Validators =
            {
                result =>
                {
                    string? text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
                    if (text is not null && !Http.ListenAddress.TryParse(text, out _, out string error))
                        result.AddError($"--listen: {error}");
                },
            },
        };

        public static Option<bool> PerPidOption() => new("--per-pid")
        {
            Description = "Label series by pid as well as by command (for a single run; every process gets its own series)",
        };

        public static Option<string?> StatsDirOption() => new("--stats-dir")
        {
            Description = "The stats directory (default: $KONFISCATOR_STATS_DIR, else /dev/shm/konfiscator-<uid>)",
            HelpName = "DIR",
        };

        public static Http.ListenAddress ParseListen(string text) =>
            Http.ListenAddress.TryParse(text, out var address, out string error)
                ? address!
                : throw new ToolException($"--listen: {error}", ExitCodes.Usage);
    }
}
