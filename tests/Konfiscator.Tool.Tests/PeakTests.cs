using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The peak of bytes in use (docs/metrics.md): a thread adds its change to the process's
/// figure in steps of 16 KiB or 1/256 of the peak, and sooner when the change could set a new
/// peak, in quanta of 1/64 of it; so a one-thread program's peak is reported within a quantum
/// below the true one and never above it. native/kpeak.c reaches 64 MiB of 8 KiB blocks once.</summary>
public sealed class PeakTests
{
    public PeakTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public void A_large_heap_s_peak_is_reported_within_a_sixty_fourth_below_the_true_one()
    {
        using var work = new TempDir("peak");
        using var stats = new TempDir("stats");
        string program = Artifacts.CompileC("kpeak.c", work.Path, "-O1");
        Artifacts.RunPreloadedToEnd([program], stats.Path);

        var scan = DirectoryScan.Run(stats.Path);
        Assert.Empty(scan.BadFiles);
        var segment = Assert.Single(scan.Segments).Stats;
        const ulong truePeak = 8192UL * 8192;          // the program's blocks; its start-up adds a few KiB
        ulong peak = segment[StatsLayout.PeakBytesInUse];
        Assert.True(peak >= truePeak - truePeak / 64, $"peak {peak} bytes, more than a sixty-fourth below the program's {truePeak}");
        Assert.True(peak <= truePeak + (64 << 10), $"peak {peak} bytes, above the program's {truePeak} and its start-up's few KiB");
    }
}
