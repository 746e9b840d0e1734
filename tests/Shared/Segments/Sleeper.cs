using System.Diagnostics;
using Konfiscator.Reader;

namespace Konfiscator.Tests.Shared;

/// <summary>A real short-lived process (<c>sleep</c>) whose pid and start time go into synthetic
/// segments, so liveness is decided by the real /proc.</summary>
internal sealed class Sleeper : IDisposable
{
    private readonly Process _process;

    public Sleeper(int seconds = 60)
    {
        _process = Process.Start(new ProcessStartInfo("sleep", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            UseShellExecute = false,
        })!;
        Pid = _process.Id;
        StartTime = ProcFs.Instance.ReadStat(Pid)?.StartTime ?? throw new InvalidOperationException("sleep is gone already");
    }

    public int Pid { get; }
    public ulong StartTime { get; }

    /// <summary>Ends the process and waits until /proc no longer shows it running.</summary>
    public void End()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ProcFs.Instance.IsRunning(Pid, StartTime) && DateTime.UtcNow < deadline) System.Threading.Thread.Sleep(10);
        Assert.False(ProcFs.Instance.IsRunning(Pid, StartTime), $"sleep {Pid} still running");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
