using Konfiscator.Bench;

namespace Konfiscator.Bench.Tests;

/// <summary>How the wrapper's and the workload's lines become a run's outcome.</summary>
public class InterpretTests
{
    private static readonly AllocatorInfo Glibc = Synthetic.Allocator("glibc");
    private static readonly RunSample Empty = new() { Workload = "fifo", Allocator = "glibc" };

    private const string Result = "{\"workload\":\"fifo\",\"elapsed_ns\":5,\"checksum\":18446744073709551615,\"malloc_lib\":\"/lib/x86_64-linux-gnu/libc.so.6\",\"peak_live_bytes\":1234}";

    private static string Runner(int exit = 0, int signal = 0) =>
        $"{{\"runner\":1,\"exit_code\":{exit},\"signal\":{signal},\"core_dumped\":false,\"wall_ns\":250000000,\"maxrss_kib\":2048," +
        "\"utime_ns\":200000000,\"stime_ns\":10000000,\"minflt\":100,\"majflt\":0,\"nvcsw\":1,\"nivcsw\":2}";

    [Fact]
    public void A_clean_run_is_measured()
    {
        var s = RunExecutor.Interpret(Empty, Result + "\n" + Runner() + "\n", "", 0, Glibc);
        Assert.True(s.Succeeded, s.Error);
        Assert.Equal(0.25, s.WallSeconds, 9);
        Assert.Equal(2048 * 1024, s.PeakRssBytes);
        Assert.Equal("18446744073709551615", s.Checksum); // beyond a double's exact range: kept as text
        Assert.Equal(1234, s.PeakLiveBytes);
        Assert.Equal(0.2, s.UserSeconds, 9);
    }

    [Fact]
    public void A_crash_names_the_signal_and_the_end_of_stderr()
    {
        var s = RunExecutor.Interpret(Empty, Runner(-1, 6), "noise\nkonfiscator: free(): double free (ptr=0x1234)\n", 0, Glibc);
        Assert.False(s.Succeeded);
        Assert.StartsWith("killed by SIGABRT", s.Error);
        Assert.Contains("double free", s.Error);
    }

    [Fact]
    public void A_non_zero_exit_or_a_missing_result_fails()
    {
        Assert.StartsWith("exited with status 2", RunExecutor.Interpret(Empty, Runner(2), "bench: fifo: block overwritten", 0, Glibc).Error);
        Assert.StartsWith("printed no result line", RunExecutor.Interpret(Empty, Runner(), "", 0, Glibc).Error);
        Assert.StartsWith("the measuring wrapper failed", RunExecutor.Interpret(Empty, "garbage\n{not json", "", 125, Glibc).Error);
    }

    [Fact]
    public void Malloc_from_the_wrong_library_fails_loudly()
    {
        var jemalloc = new AllocatorInfo("jemalloc", "/lib/x86_64-linux-gnu/libjemalloc.so.2", true, null);
        var s = RunExecutor.Interpret(Empty, Result + "\n" + Runner(), "", 0, jemalloc);
        Assert.False(s.Succeeded);
        Assert.StartsWith("PRELOAD NOT IN EFFECT", s.Error);
    }

    [Fact]
    public void Cpu_busy_ticks_are_readable_here()
    {
        Assert.True(RunExecutor.CpuBusyTicks() > 0);
    }
}
