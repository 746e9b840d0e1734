using System.Globalization;
using Konfiscator.Reader;

namespace Konfiscator.Reader.Tests;

/// <summary>run.&lt;pid&gt;.dir entries: what ps, stats, top and heap trust, and what they clean up.</summary>
public class RunRegistryTests
{
    private static void Entry(string registry, int pid, ulong start, string directory) =>
        File.WriteAllText(Path.Combine(registry, $"run.{pid}.dir"),
            string.Create(CultureInfo.InvariantCulture, $"{pid} {start} {directory}\n"));

    [Fact]
    public void Live_runs_with_private_directories_count_and_entries_of_ended_runs_are_removed()
    {
        using var registry = new TempDir("registry");
        using var good = new TempDir("run");
        using var open = new TempDir("open");
        File.SetUnixFileMode(open.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        using var live = new Sleeper();
        using var alsoLive = new Sleeper();
        var ended = new Sleeper();
        ended.End();

        Entry(registry.Path, live.Pid, live.StartTime, good.Path);
        Entry(registry.Path, alsoLive.Pid, alsoLive.StartTime, open.Path);        // readable by others: not trusted
        Entry(registry.Path, ended.Pid, ended.StartTime, good.Path);              // its run is over
        Entry(registry.Path, live.Pid + 1_000_000, live.StartTime, good.Path);    // no such process
        File.WriteAllText(Path.Combine(registry.Path, "run.77.dir"), "garbage");  // not an entry
        File.CreateSymbolicLink(Path.Combine(registry.Path, "run.999999999.dir"), Path.Combine(registry.Path, $"run.{live.Pid}.dir"));

        var found = RunRegistry.LiveRunDirectories(registry.Path);
        Assert.Equal([good.Path], found);
        Assert.False(File.Exists(Path.Combine(registry.Path, $"run.{ended.Pid}.dir")), "the entry of an ended run stays");
        Assert.True(File.Exists(Path.Combine(registry.Path, $"run.{live.Pid}.dir")));
        ended.Dispose();
    }

    [Fact]
    public void Register_writes_an_entry_that_disposing_removes()
    {
        using var registry = new TempDir("registry");
        using var run = new TempDir("run");
        var entry = RunRegistry.Register(run.Path, registry.Path);
        Assert.NotNull(entry);
        string file = Path.Combine(registry.Path, $"run.{Environment.ProcessId}.dir");
        Assert.Equal($"{Environment.ProcessId} {ProcFs.SelfStartTime()} {run.Path}\n", File.ReadAllText(file));
        Assert.Equal([run.Path], RunRegistry.LiveRunDirectories(registry.Path));
        entry.Dispose();
        Assert.False(File.Exists(file));
    }
}
