using System.Diagnostics;
using System.Text;

namespace Konfiscator.Native.Tests.Native;

/// <summary>How a child process ended and what it wrote.</summary>
internal sealed record ChildResult(string CommandLine, int ExitCode, byte[] Stdout, string Stderr)
{
    /// <summary>.NET reports a child killed by signal N as exit code 128 + N.</summary>
    public const int SignalExitBase = 128;
    public const int SIGABRT = 6;

    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    public bool KilledBy(int signal) => ExitCode == SignalExitBase + signal;

    /// <summary>Everything about the run, for assertion messages.</summary>
    public string Describe(int maxChars = 4000)
    {
        return $"command: {CommandLine}\nexit code: {ExitCode}\n--- stdout ---\n{Clip(StdoutText, maxChars)}\n--- stderr ---\n{Clip(Stderr, maxChars)}";
    }

    /// <summary>Fails the test unless the child exited with status 0.</summary>
    public ChildResult AssertSucceeded()
    {
        if (ExitCode != 0)
            Assert.Fail($"the child process failed\n{Describe()}");
        return this;
    }

    private static string Clip(string text, int maxChars) =>
        text.Length <= maxChars ? text : text[..(maxChars / 2)] + $"\n[... {text.Length - maxChars} chars ...]\n" + text[^(maxChars / 2)..];
}

/// <summary>Runs a program to completion with a timeout, capturing its output.</summary>
internal static class ChildProcess
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Variables removed from every child's inherited environment, so that a run meant
    /// to be without the allocator is, whatever the test host was started with.</summary>
    private static readonly string[] s_scrubbed = ["LD_PRELOAD", "KONFISCATOR_PROBE_FILE"];

    /// <param name="program">The program (a path, or a name looked up on PATH).</param>
    /// <param name="arguments">Its arguments, passed as they are (no shell).</param>
    /// <param name="workingDirectory">Where it runs; the test host's directory when null.</param>
    /// <param name="environment">Variables to set (a null value removes one) on top of the test
    /// host's environment.</param>
    /// <param name="timeout">How long it may run; then it (and its descendants) are killed by pid
    /// and the test fails.</param>
    public static ChildResult Run(
        string program,
        IReadOnlyList<string> arguments,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (string name in s_scrubbed)
            start.Environment.Remove(name);
        if (environment is not null)
        {
            foreach (var (name, value) in environment)
            {
                if (value is null)
                    start.Environment.Remove(name);
                else
                    start.Environment[name] = value;
            }
        }

        string commandLine = string.Join(' ', new[] { program }.Concat(arguments));
        if (environment is { Count: > 0 })
            commandLine = string.Join(' ', environment.Where(e => e.Value is not null).Select(e => $"{e.Key}={e.Value}")) + " " + commandLine;

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        process.StandardInput.Close();
        var stdout = new MemoryStream();
        Task stdoutCopy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        Task<string> stderrRead = process.StandardError.ReadToEndAsync();

        TimeSpan limit = timeout ?? DefaultTimeout;
        if (!process.WaitForExit(limit))
        {
            // Only this child and its descendants, by pid.
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            string partialErr = stderrRead.Wait(TimeSpan.FromSeconds(5)) ? stderrRead.Result : "";
            Assert.Fail($"`{commandLine}` did not finish within {limit.TotalSeconds:0} s and was killed.\n--- stderr ---\n{partialErr}");
        }
        // A grandchild that inherited the pipes could keep them open; do not wait forever.
        if (!Task.WaitAll([stdoutCopy, stderrRead], TimeSpan.FromSeconds(30)))
            Assert.Fail($"`{commandLine}` exited but its output pipes stayed open (a descendant still running?)");

        return new ChildResult(commandLine, process.ExitCode, stdout.ToArray(), stderrRead.Result);
    }
}
