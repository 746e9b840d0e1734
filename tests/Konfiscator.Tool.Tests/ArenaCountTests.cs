using System.Diagnostics;
using Konfiscator.Reader;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>docs/heap.md, "Arenas and threads": a process has min(64, 4 × CPUs) arenas, counting
/// the CPUs it may run on (its affinity mask), as its segment says. The library reads the mask
/// with sched_getaffinity instead of asking sysconf for the CPUs online, whose parsing took
/// 0.1 MiB more of libc into every process's resident pages.</summary>
public sealed class ArenaCountTests
{
    public ArenaCountTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public void A_process_has_four_arenas_per_CPU_it_may_run_on()
    {
        // .NET's processor count is the test process's own affinity mask, which ls inherits.
        Assert.Equal(Math.Min(64, 4 * Environment.ProcessorCount), ArenasOfLs([]));
    }

    [ArtifactsFact]
    public void A_process_confined_to_one_CPU_has_four_arenas()
    {
        // taskset (under the library too) sets the mask, then execs ls, whose library starts anew.
        Assert.Equal(4, ArenasOfLs(["taskset", "-c", "0"]));
    }

    private static int ArenasOfLs(string[] wrapper)
    {
        using var stats = new TempDir("stats");
        Artifacts.RunPreloadedToEnd([.. wrapper, "ls", "/"], stats.Path);
        var scan = DirectoryScan.Run(stats.Path);
        Assert.Empty(scan.BadFiles);
        var ls = scan.Segments.Select(s => s.Stats).Where(s => s.Command == "ls").ToList();
        return Assert.Single(ls).ArenaCount;
    }
}
