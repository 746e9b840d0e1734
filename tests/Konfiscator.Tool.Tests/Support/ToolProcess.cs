using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Konfiscator.Tool.Tests.Support;

/// <summary>The konfiscator tool as a child process: the build next to the tests by default, or
/// the one at <see cref="Path"/> (e.g. artifacts/bin/konfiscator for end-to-end runs, where it finds
/// ../lib/libkonfiscator.so and the driver itself).</summary>
internal sealed partial class ToolProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<Uri> _url = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [GeneratedRegex(@" at (http://\S+/metrics)")]
    private static partial Regex ServingLine();

    /// <summary>The tool built with the tests (its apphost next to the test assembly).</summary>
    public static string DefaultPath => System.IO.Path.Combine(AppContext.BaseDirectory, "konfiscator");

    private ToolProcess(Process process) => _process = process;

    public string Path { get; private init; } = DefaultPath;
    public int Pid => _process.Id;
    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    public static ToolProcess Start(IEnumerable<string> args, IDictionary<string, string?>? environment = null, string? tool = null)
    {
        tool ??= DefaultPath;
        var start = new ProcessStartInfo(tool)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (string a in args) start.ArgumentList.Add(a);
        // Never let a test's tool fight over the default directory or a caller's settings.
        start.Environment.Remove("KONFISCATOR_STATS_DIR");
        start.Environment.Remove("KONFISCATOR_LIB");
        start.Environment["NO_COLOR"] = "1";
        if (environment is not null)
            foreach (var (k, v) in environment)
            {
                if (v is null) start.Environment.Remove(k);
                else start.Environment[k] = v;
            }
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var tp = new ToolProcess(process) { Path = tool };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (tp._stdout) tp._stdout.AppendLine(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (tp._stderr) tp._stderr.AppendLine(e.Data);
            var m = ServingLine().Match(e.Data);
            if (m.Success) tp._url.TrySetResult(new Uri(m.Groups[1].Value));
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return tp;
    }

    /// <summary>Runs the tool to completion.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IEnumerable<string> args,
        IDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        using var tool = Start(args, environment);
        int code = await tool.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(30));
        return (code, tool.Stdout, tool.Stderr);
    }

    /// <summary>Waits for the "… at http://…/metrics" line the tool prints once it serves.</summary>
    public async Task<Uri> WaitForMetricsUrlAsync(TimeSpan? timeout = null)
    {
        var exited = _process.WaitForExitAsync();
        var done = await Task.WhenAny(_url.Task, exited, Task.Delay(timeout ?? TimeSpan.FromSeconds(20)));
        if (done == _url.Task) return await _url.Task;
        // A run whose program ends at once can exit before the stderr handler saw the line it
        // printed first: the parameterless WaitForExit() returns only once the redirected streams
        // are read to the end (bounded, should a grandchild hold them open).
        if (done == exited)
        {
            await Task.WhenAny(Task.Run(() => _process.WaitForExit()), Task.Delay(TimeSpan.FromSeconds(5)));
            if (_url.Task.IsCompleted) return await _url.Task;
        }
        throw new Xunit.Sdk.XunitException(
            $"the tool did not start serving ({(_process.HasExited ? $"exited {_process.ExitCode}" : "timed out")})\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"the tool did not exit within {timeout}\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
        }
        _process.WaitForExit(); // flush the output readers
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    public void Signal(int signal) => Konfiscator.Reader.Interop.Libc.Kill(_process.Id, signal);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signal(15);
                if (!_process.WaitForExit(5000)) _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
