using System.Diagnostics;
using System.Globalization;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary><c>konfiscator top</c> on a real terminal: tmux gives it an 80x30 pseudo-terminal,
/// capture-pane reads the screen and send-keys presses q or Ctrl-C.</summary>
public class TopTerminalTests
{
    public TopTerminalTests() => ArtifactsCheck.RequireBuilt();

    [ArtifactsFact]
    public async Task Top_redraws_in_place_on_a_terminal_and_q_or_ctrl_c_leave()
    {
        string tmux = PrometheusServer.Which("tmux")
            ?? throw new Xunit.Sdk.XunitException("needs tmux on PATH (apt-get install tmux; .ci/run installs it)");
        using var stats = new TempDir("stats");
        using var heap = await KHeap.StartAsync(stats.Path);
        foreach (string key in new[] { "q", "C-c" })
        {
            string session = $"ktop{Environment.ProcessId}{key.Replace("-", "")}";
            string command = $"'{Artifacts.Tool}' top -p {heap.Process.Id.ToString(CultureInfo.InvariantCulture)} --interval 0.3 --stats-dir '{stats.Path}'; echo LEFT-WITH-$?; sleep 60";
            await Tmux(tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "30", command);
            try
            {
                // A whole frame: from the title down to the segment line (a capture may catch a frame being drawn).
                string first = await ScreenUntil(tmux, session, s => s.Contains("konfiscator top · pid", StringComparison.Ordinal)
                                                                     && s.Contains("segment ", StringComparison.Ordinal));
                Assert.Contains("in use", first);
                Assert.All(first.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 80, l));
                // Redrawn in place: the frame says rates over the last interval, and the title stays on top.
                string later = await ScreenUntil(tmux, session, s => s.Contains("rates over the last", StringComparison.Ordinal)
                                                                     && s.Contains("segment ", StringComparison.Ordinal));
                Assert.True(later.Split('\n').Count(l => l.Contains("konfiscator top · pid", StringComparison.Ordinal)) == 1,
                    $"not one frame in place:\n{later}");
                await Tmux(tmux, "send-keys", "-t", session, key);
                string end = await ScreenUntil(tmux, session, s => s.Contains("LEFT-WITH-", StringComparison.Ordinal));
                Assert.Contains("LEFT-WITH-0", end);
            }
            finally
            {
                await Tmux(tmux, "kill-session", "-t", session);
            }
        }
        heap.Go("go1");
        heap.Go("go2");
    }

    private static async Task<string> ScreenUntil(string tmux, string session, Func<string, bool> condition)
    {
        string screen = "";
        for (int i = 0; i < 300; i++)
        {
            screen = await Tmux(tmux, "capture-pane", "-p", "-t", session);
            if (condition(screen)) return screen;
            await Task.Delay(50);
        }
        throw new Xunit.Sdk.XunitException($"the screen never showed what was expected:\n{screen}");
    }

    private static async Task<string> Tmux(string tmux, params string[] args)
    {
        var start = new ProcessStartInfo(tmux) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return output;
    }
}
