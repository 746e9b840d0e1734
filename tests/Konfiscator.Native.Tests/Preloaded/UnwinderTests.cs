using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/unwind_compare.c under the allocator: the sampler's own stack walk
/// (Sampling/Unwinder.cs and CallFrames.cs, which read the objects' .eh_frame tables) gives the
/// same return addresses as glibc's backtrace(), libgcc's unwinder, from the same frames: plain
/// and deep calls, a frame addressed through %rbp, a callback from inside libc, a thread down to
/// its start; in a signal handler it agrees up to the kernel's signal frame, where it stops.</summary>
public sealed class UnwinderTests
{
    public static TheoryData<string> Builds => new() { "O2", "O0" };

    [Theory]
    [MemberData(nameof(Builds))]
    public void TheWalk_GivesTheSameFramesAsBacktrace(string build)
    {
        string program = build == "O2" ? NativePrograms.Instance.UnwindCompareOptimized : NativePrograms.Instance.UnwindCompareUnoptimized;
        var run = Preload.Run(program, []);
        run.Result.AssertSucceeded();
        run.AssertRan("unwind_compare_" + build);
        string output = run.Result.StdoutText;
        foreach (string name in new[] { "main", "recursion", "alloca", "qsort callback", "deep", "thread", "signal handler" })
            Assert.Contains($"{name}: ", output);
        Assert.DoesNotContain("differ", output);
        // The deep recursion is walked to the walk's limit, not stopped early.
        Assert.Contains("deep: 64 frames agree", output);
    }

    /// <summary>tests/native/sample_syscalls.c: once warm, a sampled allocation makes no system
    /// call (the walk's registers come from _setjmp, not getcontext, which saves the signal mask
    /// with rt_sigprocmask; the thread's id is read once): under a filter that traps those two,
    /// thousands of samples are taken. On a virtual machine whose kernel runs in an address
    /// space of its own, each such call also cost the program its TLB (Sampling/StartRegisters.cs).</summary>
    [Fact]
    public void A_sample_makes_no_system_call()
    {
        var run = Preload.Run(NativePrograms.Instance.SampleSyscalls, [],
            environment: new Dictionary<string, string?> { ["KONFISCATOR_SAMPLE_BYTES"] = "4096" });
        Assert.DoesNotContain("made while sampling", run.Result.StdoutText);
        run.Result.AssertSucceeded();
        run.AssertRan("sample_syscalls");
        Assert.Contains("ok", run.Result.StdoutText);
    }

    /// <summary>tests/native/unwind_files.c: walks through libc and the program read their tables
    /// from the files (Sampling/ObjectFiles.cs), so the mappings that hold the tables stay as
    /// resident as they were, and repeated walks take rows from the cache; a library whose file
    /// was replaced on disk after it was loaded is read through its mapping, and the walk through
    /// it still agrees with backtrace(); so is the program under a seccomp filter.</summary>
    [Fact]
    public void TheWalk_ReadsTablesFromTheFiles_AndTheMappingOfAReplacedFile()
    {
        string directory = Directory.CreateTempSubdirectory("konfiscator-unwind-files-").FullName;
        try
        {
            var programs = NativePrograms.Instance;
            var run = Preload.Run(programs.UnwindFiles, [programs.UnwindPluginA, programs.UnwindPluginB, directory]);
            run.Result.AssertSucceeded();
            run.AssertRan("unwind_files");
            string output = run.Result.StdoutText;
            Assert.Contains("plugin as loaded: walk agrees with backtrace", output);
            Assert.Contains("plugin replaced on disk: walk agrees with backtrace", output);
            Assert.Contains("under seccomp: walk agrees with backtrace", output);
            Assert.EndsWith("ok\n", output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>tests/native/row_cache.c: walks from 4 000 call sites, four passes; by the fourth the
    /// row cache holds every site's row and the walks read (almost) no table, where a cache that
    /// started again empty at 1 024 rows read them all on every pass.</summary>
    [Fact]
    public void TheRowCache_KeepsTheRowsOfThousandsOfCallSites()
    {
        var run = Preload.Run(NativePrograms.Instance.RowCache, []);
        run.Result.AssertSucceeded();
        run.AssertRan("row_cache");
        Assert.Contains("pass 4: ", run.Result.StdoutText);
        Assert.EndsWith("ok\n", run.Result.StdoutText);
    }
}
