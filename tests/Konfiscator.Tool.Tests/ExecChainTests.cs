using System.Diagnostics;
using Konfiscator.Reader;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>A process that execs through shell scripts (as pyenv's shims do: a script runs helpers,
/// then execs the next script or the program): each image publishes a segment of the next
/// generation, and readers take the highest generation of a process for its current image. A
/// helper started by an image tidies the directory at its start; it used to free the name of an
/// image replaced by exec while its process ran, the next image then took that lower name, and
/// `konfiscator ps` showed the replaced image ("sh") instead of the program ("sleep").</summary>
public sealed class ExecChainTests
{
    public ExecChainTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public void The_current_image_of_a_process_that_execd_through_scripts_is_the_one_shown()
    {
        using var stats = new TempDir("stats");
        // sh runs /bin/true (a helper, which tidies the directory), execs sh, which does the same
        // and execs sleep: three images of one process, two helpers in between.
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (string a in new[] { "-c", "/bin/true; exec /bin/sh -c '/bin/true; exec sleep 30'" }) start.ArgumentList.Add(a);
        start.Environment["LD_PRELOAD"] = Artifacts.Library;
        start.Environment["KONFISCATOR_STATS_DIR"] = stats.Path;
        using var process = Process.Start(start)!;
        try
        {
            List<ScannedSegment> live = [];
            for (int i = 0; i < 200; i++)
            {
                live = DirectoryScan.Run(stats.Path).Segments.Where(s => s.Live && s.Stats.Pid == process.Id).ToList();
                if (live.Count == 1 && live[0].Stats.Command == "sleep") break;
                Thread.Sleep(50);
            }
            var current = Assert.Single(live);
            Assert.Equal("sleep", current.Stats.Command);
            Assert.Equal(2u, current.Stats.Generation);
        }
        finally
        {
            process.Kill();
            process.WaitForExit();
        }
    }
}
