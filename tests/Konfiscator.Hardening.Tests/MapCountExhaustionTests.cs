using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Issue 8, case 4: at vm.max_map_count, giving part of a mapping back needs a map entry the
/// process does not have, and munmap fails with ENOMEM. The library used to abort; it must keep
/// the memory (pages released, the range still mapped) and try again later, as glibc carries on.
/// The child uses up its own map entries (single pages of alternating protection), so nothing
/// outside it is touched and no privilege is needed.
/// </summary>
public sealed class MapCountExhaustionTests
{
    [Fact]
    public void Frees_at_the_map_entry_limit_keep_the_memory_and_retry_later()
    {
        var run = Preload.Run(TrialPrograms.Get("map_count_exhaustion"), []);
        var result = run.Result.AssertSucceeded();
        Assert.Contains("heap check 0", result.StdoutText, StringComparison.Ordinal);
        // A large block's munmap, refused at the limit, is done once map entries are free
        // again; malloc_trim giving the heap region's free top back at the limit (done or
        // refused, as the kernel can) leaves the heap sound, and the top is gone by the end.
        Assert.Contains(", 1 regions,", result.StdoutText, StringComparison.Ordinal);
        Assert.Contains("freed large block unmapped: yes", result.StdoutText, StringComparison.Ordinal);
        Assert.Contains("top given back by the end: yes", result.StdoutText, StringComparison.Ordinal);
        Assert.Contains("ok", result.StdoutText, StringComparison.Ordinal);
        Assert.DoesNotContain("konfiscator:", result.Stderr, StringComparison.Ordinal);
    }
}
