using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/prefault.c under the allocator: the thread caches' runs carved from fresh
/// heap populate its pages with one madvise each instead of a page fault a page, and under a
/// seccomp filter that traps that advice they never ask (Heap/Arena.Prefault.cs); the blocks
/// keep their contents either way.</summary>
public sealed partial class PrefaultTests
{
    [Fact]
    public void RunsPopulateFreshPages_ButNeverUnderASeccompFilter()
    {
        var run = Preload.Run(NativePrograms.Instance.Prefault, []);
        string output = run.Result.StdoutText;
        Assert.DoesNotContain("under a seccomp filter\n", output);
        run.Result.AssertSucceeded();
        run.AssertRan("prefault");

        var grown = Grown().Match(output);
        Assert.True(grown.Success, $"unexpected output: {output}");
        // A kernel before 5.14 refuses the advice; the program then needs no page populated.
        if (!output.Contains("this kernel refuses MADV_POPULATE_WRITE"))
            Assert.True(long.Parse(grown.Groups[2].Value) > 0, $"no page was populated: {output}");
        Assert.Contains("under seccomp: 0 pages populated\n", output);
        Assert.EndsWith("ok\n", output);
    }

    [GeneratedRegex(@"grown: (\d+) bytes asked for, (\d+) pages populated")]
    private static partial Regex Grown();
}
