using System.CommandLine;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace Konfiscator.Tool.Cli;

/// <summary>System.CommandLine's generated help, with two additions: an "Examples:" section per
/// verb, and optional arguments shown in brackets in the command list (the generated list shows
/// <c>stats &lt;PID&gt;</c>, which reads as a required PID). Usage lines for error messages are
/// taken from the same generated help, so they can never disagree with the parser.</summary>
internal static class Help
{
    private static readonly ConditionalWeakTable<Command, (string Line, string What)[]> s_examples = new();

    /// <summary>Examples shown at the end of <paramref name="command"/>'s help.</summary>
    public static void Examples(Command command, params (string Line, string What)[] examples) =>
        s_examples.AddOrUpdate(command, examples);

    /// <summary>Puts the extended help action on the root's (recursive) --help option.</summary>
    public static void Install(RootCommand root)
    {
        var option = root.Options.OfType<System.CommandLine.Help.HelpOption>().Single();
        option.Action = new GeneratedHelp((System.CommandLine.Help.HelpAction)option.Action!);
    }

    [ThreadStatic] private static bool t_plain;

    /// <summary>The help text System.CommandLine generates for a command, unchanged.</summary>
    public static string Generated(Command command)
    {
        var root = RootOf(command);
        var path = Path(command).Skip(1).Append("--help").ToArray();
        var writer = new StringWriter();
        t_plain = true;
        try
        {
            root.Parse(path).Invoke(new InvocationConfiguration { Output = writer });
        }
        finally
        {
            t_plain = false;
        }
        return writer.ToString();
    }

    /// <summary>The help as --help prints it: generated, optional arguments of the listed commands
    /// in brackets, then the command's examples.</summary>
    public static string Text(Command command)
    {
        var lines = Generated(command).TrimEnd().Split('\n').ToList();
        int list = lines.FindIndex(l => l.TrimEnd() == "Commands:");
        if (list >= 0)
        {
            for (int i = list + 1; i < lines.Count && lines[i].Trim().Length > 0; i++)
            {
                foreach (var sub in command.Subcommands)
                {
                    string prefix = "  " + sub.Name + " ";
                    if (!lines[i].StartsWith(prefix, StringComparison.Ordinal)) continue;
                    foreach (var argument in sub.Arguments.Where(a => a.Arity.MinimumNumberOfValues == 0))
                    {
                        string label = "<" + (argument.HelpName ?? argument.Name) + ">";
                        int at = lines[i].IndexOf(label, prefix.Length - 1, StringComparison.Ordinal);
                        if (at >= 0) lines[i] = lines[i][..at] + "[" + label[1..^1] + "]" + lines[i][(at + label.Length)..];
                    }
                }
            }
        }
        if (s_examples.TryGetValue(command, out var examples) && examples.Length > 0)
        {
            lines.Add("");
            lines.Add("Examples:");
            int width = examples.Max(e => e.Line.Length);
            foreach (var (line, what) in examples)
                lines.Add($"  {line.PadRight(width)}  # {what}");
        }
        return string.Join('\n', lines) + "\n\n";
    }

    /// <summary>The lines of the generated "Usage:" section.</summary>
    public static IEnumerable<string> UsageLines(Command command)
    {
        var lines = Generated(command).Split('\n');
        int start = Array.FindIndex(lines, l => l.TrimEnd() == "Usage:");
        if (start < 0) yield break;
        for (int i = start + 1; i < lines.Length && lines[i].Trim().Length > 0; i++)
            yield return lines[i].Trim();
    }

    /// <summary>"konfiscator stats" for the stats command.</summary>
    public static IEnumerable<string> Path(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is not null; s = s.Parents.FirstOrDefault())
            names.Insert(0, s is RootCommand ? CommandLine.ToolName : s.Name);
        return names;
    }

    private static RootCommand RootOf(Command command)
    {
        Symbol s = command;
        while (s.Parents.FirstOrDefault() is { } parent) s = parent;
        return (RootCommand)s;
    }

    /// <summary>The --help action: the generated help, adjusted and extended.</summary>
    internal sealed class GeneratedHelp(System.CommandLine.Help.HelpAction generated) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parse)
        {
            if (t_plain) return generated.Invoke(parse);
            parse.InvocationConfiguration.Output.Write(Text(parse.CommandResult.Command));
            return 0;
        }
    }
}
