using System.CommandLine;
using System.CommandLine.Parsing;
using Konfiscator.Tool.Commands;

namespace Konfiscator.Tool.Cli;

/// <summary>The command line: System.CommandLine parses every verb and generates its help and
/// usage lines; this class only lists the verbs and turns parse errors into one usage error
/// (exit 2) with the verb's generated usage.</summary>
internal static class CommandLine
{
    /// <summary>Every verb of the tool. Adding a verb is one line here.</summary>
    private static readonly Func<Command>[] Verbs =
    [
        RunCommand.Create,
        ExporterCommand.Create,
        StatsCommand.Create,
        PsCommand.Create,
        TopCommand.Create,
        HeapCommand.Create,
        ProfileCommand.Create,
        CleanCommand.Create,
        BenchCommand.Create,
    ];

    public const string ToolName = "konfiscator";

    public static async Task<int> RunAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Action is not Help.GeneratedHelp && Messages(parse) is { Count: > 0 } problems)
            return UsageError(parse, problems);
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
            Console.Error.WriteLine($"{ToolName}: {e.Message}");
            return e.ExitCode;
        }
    }

    public static RootCommand Build()
    {
        var root = new RootCommand(
            "A malloc you can see into: runs programs with libkonfiscator.so preloaded and serves what their heaps do as Prometheus metrics.");
        foreach (var verb in Verbs) root.Add(verb());
        Help.Install(root);
        Help.Examples(root,
            ("konfiscator run -- python3 app.py", "run a program under the allocator, metrics on :8000"),
            ("konfiscator stats", "the statistics of the most recently started process"),
            ("konfiscator <command> --help", "a command's options and examples"));
        root.SetAction(parse => UsageError(parse, ["say which command: " + string.Join(", ", root.Subcommands.Select(c => c.Name))]));
        return root;
    }

    /// <summary>One line per problem, the command's generated usage, and where to read more.</summary>
    private static int UsageError(ParseResult parse, IEnumerable<string> messages)
    {
        var err = Console.Error;
        foreach (string message in messages)
            err.WriteLine($"{ToolName}: {message}");
        var command = parse.CommandResult.Command;
        foreach (string line in Help.UsageLines(command))
            err.WriteLine($"Usage: {line}");
        err.WriteLine($"Try '{string.Join(' ', Help.Path(command))} --help' for more information.");
        return ExitCodes.Usage;
    }

    /// <summary>The parser's errors; and first, any word before <c>--</c> that looks like an
    /// option but was taken as an argument: it is an unknown option, never a PID or a program to
    /// run (<c>run --frob -- ls</c> is a usage error, not an attempt to run "--frob").</summary>
    private static List<string> Messages(ParseResult parse)
    {
        var messages = new List<string>();
        foreach (var token in parse.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) break;
            if (token.Type == TokenType.Argument && LooksLikeOption(token.Value))
                messages.Add($"unknown option '{token.Value}'");
        }
        if (messages.Count > 0) return messages;
        messages.AddRange(parse.Errors.Select(e => e.Message));
        return messages;
    }

    private static bool LooksLikeOption(string word) =>
        word.Length > 1 && word[0] == '-' && !char.IsAsciiDigit(word[1]);
}
