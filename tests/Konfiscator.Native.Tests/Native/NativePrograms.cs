using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Native;

/// <summary>
/// The C programs of tests/native, compiled with gcc once per test run into a temporary
/// directory (removed when the test process exits). A compile error fails every test that needs
/// the programs, with gcc's message.
/// </summary>
internal sealed class NativePrograms
{
    private static readonly Lazy<NativePrograms> s_instance = new(Build);

    private NativePrograms(string directory)
    {
        Directory = directory;
    }

    public static NativePrograms Instance => s_instance.Value;

    public string Directory { get; }

    /// <summary>The seed's driver: prints "index N: value N" for N = 0..49.</summary>
    public string Driver => Path.Combine(Directory, "driver");

    /// <summary>Prints which object malloc, free, calloc, realloc and posix_memalign resolve to.</summary>
    public string WhichMalloc => Path.Combine(Directory, "whichmalloc");

    /// <summary>The multi-threaded stress program.</summary>
    public string Stress => Path.Combine(Directory, "stress");

    /// <summary>Double frees, foreign pointers, overwritten headers, by mode.</summary>
    public string Misuse => Path.Combine(Directory, "misuse");
    public string ForeignFrees => Path.Combine(Directory, "foreign_frees");

    /// <summary>A bin traded at random, then batches: how far each bin grows.</summary>
    public string BinGrowth => Path.Combine(Directory, "bin_growth");

    /// <summary>The sampler's stack walk against glibc's backtrace() from the same frames, built
    /// with and without optimization.</summary>
    public string UnwindCompareOptimized => Path.Combine(Directory, "unwind_compare_O2");
    public string UnwindCompareUnoptimized => Path.Combine(Directory, "unwind_compare_O0");

    /// <summary>Where the walk reads the tables from (the objects' files), and two builds of a
    /// small library whose file it replaces while it is loaded.</summary>
    public string UnwindFiles => Path.Combine(Directory, "unwind_files");

    /// <summary>Walks from 4 000 call sites four times and checks that the row cache kept their rows.</summary>
    public string RowCache => Path.Combine(Directory, "row_cache");
    public string UnwindPluginA => Path.Combine(Directory, "libunwind-plugin-a.so");
    public string UnwindPluginB => Path.Combine(Directory, "libunwind-plugin-b.so");

    /// <summary>Sampled allocations under a seccomp filter that traps the system calls a
    /// sample used to make.</summary>
    public string SampleSyscalls => Path.Combine(Directory, "sample_syscalls");

    /// <summary>Grows the heap in runs, then again under a seccomp filter that traps the advice
    /// the runs populate pages with (Heap/Arena.Prefault.cs).</summary>
    public string Prefault => Path.Combine(Directory, "prefault");

    /// <summary>Allocates blocks of every path's sizes and frees them all (bins, held blocks, heap,
    /// large blocks, realloc, another thread).</summary>
    public string SampledFrees => Path.Combine(Directory, "sampled_frees");

    /// <summary>Single-threaded, then not: the heap's plain-store locks turn atomic.</summary>
    public string SingleToMulti => Path.Combine(Directory, "single_to_multi");

    /// <summary>Which thread cache the fast paths find: alone, forked, threaded, at the last thread's exit.</summary>
    public string SoleCache => Path.Combine(Directory, "sole_cache");

    /// <summary>Calls glibc's inspection functions (mallinfo2, malloc_trim, malloc_info…) and checks them.</summary>
    public string Inspect => Path.Combine(Directory, "inspect");

    /// <summary>The library preloaded beside libkonfiscator.so to prove, in every process, that
    /// the malloc API resolved to it.</summary>
    public string Probe => Path.Combine(Directory, "libkonfiscator-probe.so");

    private static NativePrograms Build()
    {
        string gcc = Tools.Require("gcc");
        string directory = Path.Combine(Path.GetTempPath(), $"konfiscator-native-programs-{Environment.ProcessId}-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { System.IO.Directory.Delete(directory, recursive: true); }
            catch (IOException) { }
        };

        const string Warnings = "-Wall -Wextra -Werror";
        var builds = new (string Output, string Arguments)[]
        {
            ("driver", $"-O2 {Warnings} driver.c"),
            // PIE, so that taking a function's address resolves through the GOT (see the source).
            ("whichmalloc", $"-O2 {Warnings} -fPIE -pie whichmalloc.c -ldl"),
            ("stress", $"-O2 {Warnings} -pthread stress.c -ldl"),
            ("foreign_frees", $"-O2 {Warnings} -pthread foreign_frees.c"),
            ("sampled_frees", $"-O2 {Warnings} -pthread sampled_frees.c"),
            ("bin_growth", $"-O2 {Warnings} bin_growth.c -ldl"),
            ("unwind_compare_O2", $"-O2 {Warnings} -pthread unwind_compare.c -ldl"),
            ("unwind_compare_O0", $"-O0 {Warnings} -pthread unwind_compare.c -ldl"),
            ("unwind_files", $"-O2 {Warnings} -pthread unwind_files.c -ldl"),
            // -O0: every call a call site of its own (see the source).
            ("row_cache", $"-O0 {Warnings} row_cache.c -ldl"),
            ("sample_syscalls", $"-O2 {Warnings} sample_syscalls.c -ldl"),
            ("prefault", $"-O2 {Warnings} prefault.c -ldl"),
            ("libunwind-plugin-a.so", $"-O2 {Warnings} -shared -fPIC -DVARIANT=1 unwind_plugin.c"),
            ("libunwind-plugin-b.so", $"-O2 {Warnings} -shared -fPIC -DVARIANT=2 unwind_plugin.c"),
            ("single_to_multi", $"-O2 {Warnings} -pthread single_to_multi.c -ldl"),
            ("sole_cache", $"-O2 {Warnings} -pthread sole_cache.c -ldl"),
            ("misuse", $"-O2 {Warnings} misuse.c -ldl"),
            // mallinfo() is deprecated in glibc's header, and still what many programs call.
            ("inspect", $"-O2 {Warnings} -Wno-deprecated-declarations inspect.c"),
            ("libkonfiscator-probe.so", $"-O2 {Warnings} -shared -fPIC probe.c -ldl"),
        };
        var results = builds.AsParallel().Select(build =>
        {
            var arguments = build.Arguments.Split(' ')
                .Select(a => a.EndsWith(".c", StringComparison.Ordinal) ? RepoPaths.NativeSource(a) : a)
                .Concat(["-o", Path.Combine(directory, build.Output)])
                .ToList();
            return ChildProcess.Run(gcc, arguments);
        }).ToList();
        foreach (var result in results.Where(r => r.ExitCode != 0))
            Assert.Fail($"compiling a test program failed\n{result.Describe()}");
        return new NativePrograms(directory);
    }
}
