using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// tests/native/locked_memory.c: a process that locks its present and future memory (mlockall)
/// allocates 10 MiB and frees it, so that heap regions go back into their arena's reservation.
/// The kernel fills in every readable mapping of such a process at once, so the reservation
/// must stay PROT_NONE above the arena's highest region (only regions given back are made
/// readable, with mprotect, which fills nothing in): reserved readable, the 1 GiB was resident.
/// </summary>
public sealed class LockedMemoryTests
{
    [MemoryLockFact]
    public void A_process_that_locks_its_memory_keeps_only_the_heap_resident()
    {
        var run = Preload.Run(TrialPrograms.Get("locked_memory"), []);
        var result = run.Result;
        Assert.True(result.ExitCode == 0, result.Describe());
        var match = System.Text.RegularExpressions.Regex.Match(result.StdoutText, @"locked_kib=(\d+) rss_kib=(\d+)");
        Assert.True(match.Success, result.Describe());
        long locked = long.Parse(match.Groups[1].Value), rss = long.Parse(match.Groups[2].Value);
        Assert.True(locked > 0, $"mlockall did not lock anything\n{result.Describe()}");
        Assert.True(rss < 128 * 1024, $"{rss} KiB resident after 10 MiB allocated and freed under mlockall\n{result.Describe()}");
    }
}
