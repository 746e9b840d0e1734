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
        // A tmux server of this test's own (-L), kept alive by a session that outlives both
        // rounds: a server exits with its last session, and a new-session sent while it was
        // exiting failed now and then, leaving nothing on the screen to wait for.
        string server = $"ktop{Environment.ProcessId}";
        await TmuxOk(tmux, server, "new-session", "-d", "-s", "keep", "sleep 600");
        try
        {
            foreach (string key in new[] { "q", "C-c" })
                await TopOnATerminal(tmux, server, key, heap, stats.Path);
        }
        finally
        {
            await Tmux(tmux, server, "kill-server");
        }
        heap.Go("go1");
        heap.Go("go2");
    }

    private static async Task TopOnATerminal(string tmux, string server, string key, KHeap heap, string statsDir)
    {
        string session = $"ktop{key.Replace("-", "")}";
        string command = $"'{Artifacts.Tool}' top -p {heap.Process.Id.ToString(CultureInfo.InvariantCulture)} --interval 0.3 --stats-dir '{statsDir}'; echo LEFT-WITH-$?; sleep 60";
        await TmuxOk(tmux, server, "new-session", "-d", "-s", session, "-x", "80", "-y", "30", command);
        try
        {
            // A whole frame: from the title down to the segment line (a capture may catch a frame being drawn).
            string first = await ScreenUntil(tmux, server, session, s => s.Contains("konfiscator top · pid", StringComparison.Ordinal)
                                                                 && s.Contains("segment ", StringComparison.Ordinal));
            Assert.Contains("in use", first);
            Assert.All(first.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 80, l));
            // Redrawn in place: the frame says rates over the last interval, and the title stays on top.
            string later = await ScreenUntil(tmux, server, session, s => s.Contains("rates over the last", StringComparison.Ordinal)
                                                                 && s.Contains("segment ", StringComparison.Ordinal));
            Assert.True(later.Split('\n').Count(l => l.Contains("konfiscator top · pid", StringComparison.Ordinal)) == 1,
                $"not one frame in place:\n{later}");
            await TmuxOk(tmux, server, "send-keys", "-t", session, key);
            string end = await ScreenUntil(tmux, server, session, s => s.Contains("LEFT-WITH-", StringComparison.Ordinal));
            Assert.Contains("LEFT-WITH-0", end);
        }
        finally
        {
            await Tmux(tmux, server, "kill-session", "-t", session);
        }
    }

    private static async Task<string> ScreenUntil(string tmux, string server, string session, Func<string, bool> condition)
    {
        var screen = (Status: 0, Output: "", Error: "");
        for (int i = 0; i < 300; i++)
        {
            screen = await Tmux(tmux, server, "capture-pane", "-p", "-t", session);
            if (condition(screen.Output)) return screen.Output;
            await Task.Delay(50);
        }
        throw new Xunit.Sdk.XunitException(
            $"the screen never showed what was expected (tmux capture-pane: status {screen.Status}, {screen.Error.Trim()}):\n{screen.Output}");
    }

    /// <summary>A tmux command that must succeed; its standard output.</summary>
    private static async Task<string> TmuxOk(string tmux, string server, params string[] args)
    {
        var r = await Tmux(tmux, server, args);
        if (r.Status != 0) throw new Xunit.Sdk.XunitException($"tmux {string.Join(' ', args)}: status {r.Status}: {r.Error.Trim()}");
        return r.Output;
    }

    private static async Task<(int Status, string Output, string Error)> Tmux(string tmux, string server, params string[] args)
    {
        var start = new ProcessStartInfo(tmux) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-L");
        start.ArgumentList.Add(server);
        foreach (string a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await output, await error);
    }
}
