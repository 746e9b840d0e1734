using System.CommandLine;
using Konfiscator.Reader;
using Konfiscator.Tool.Cli;
using Konfiscator.Tool.Views;

namespace Konfiscator.Tool.Commands;

/// <summary><c>konfiscator heap [PID | -p PID | -n NAME] [--stats-dir DIR]</c>: draws a process's heap
/// map (one character per cell) and its free blocks by size.</summary>
internal static class HeapCommand
{
    public static Command Create()
    {
        var pidArgument = ProcessChoice.PidArgument();
        var pid = ProcessChoice.PidOption();
        var name = ProcessChoice.NameOption();
        var statsDir = SharedOptions.StatsDir();
        var heap = new Command("heap", "Draw a process's heap map: how full each part of each region is, and its free blocks by size")
        {
            pidArgument, pid, name, statsDir,
        };
        Help.Examples(heap,
            ("konfiscator heap", "the most recently started process that publishes"),
            ("konfiscator heap -n python3", "the newest live python3"),
            ("konfiscator heap 4242 | less", "process 4242, page by page"));
        heap.SetAction(parse =>
        {
            if (parse.GetValue(pid) is not null && parse.GetValue(pidArgument) is not null)
                throw new ToolException("give the PID once: either as an argument or with -p", ExitCodes.Usage);
            return Run(parse.GetValue(pid) ?? parse.GetValue(pidArgument), parse.GetValue(name), parse.GetValue(statsDir));
        });
        return heap;
    }

    public static int Run(int? pid, string? name, string? statsDir)
    {
        var chosen = ProcessChoice.Choose(pid, name, statsDir, Console.Error);
        var map = HeapMapReader.Read(chosen.SegmentPath);
        Console.Out.Write(HeapText.Render(chosen.Stats, map));
        if (map is not null) Console.Out.Write(HeapText.FreeBlocks(map));
        return ExitCodes.Ok;
    }
}
