using System.ComponentModel;
using System.Diagnostics;
using Konfiscator.Reader.Interop;

namespace Konfiscator.Tool.Commands;

/// <summary>Finds and starts the program <c>run</c> was given, failing the way a shell does:
/// <c>konfiscator: NAME: command not found</c> (127) for a name not on PATH, <c>No such file or
/// directory</c> (127) for a missing path, <c>Permission denied</c> / <c>Is a directory</c> (126).
/// All of this is decided before anything is served, so nothing claims to serve a program that
/// never started.</summary>
internal static class CommandLauncher
{
    /// <summary>The file that <paramref name="name"/> names, as execvp would find it.</summary>
    public static string Resolve(string name)
    {
        if (name.Length == 0)
            throw new ToolException(": command not found", ExitCodes.NotFound);
        if (name.Contains('/'))
        {
            CheckExecutable(name, name);
            return name;
        }
        string? denied = null;
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
        {
            string candidate = Path.Combine(dir.Length == 0 ? "." : dir, name);
            if (!File.Exists(candidate)) continue;
            if (Libc.Access(candidate, Libc.X_OK) == 0) return candidate;
            denied ??= candidate;
        }
        // Like bash: a file that is there but not executable is "Permission denied".
        if (denied is not null) CheckExecutable(name, denied);
        throw new ToolException($"{name}: command not found", ExitCodes.NotFound);
    }

    private static void CheckExecutable(string name, string path)
    {
        if (Directory.Exists(path))
            throw new ToolException($"{name}: Is a directory", ExitCodes.CannotExecute);
        if (!File.Exists(path))
            throw new ToolException($"{name}: No such file or directory", ExitCodes.NotFound);
        if (Libc.Access(path, Libc.X_OK) != 0)
            throw new ToolException($"{name}: Permission denied", ExitCodes.CannotExecute);
    }

    /// <summary>A hint when the loader will ignore LD_PRELOAD: a set-user-ID program owned by
    /// someone else (or a set-group-ID one, unless we are root) runs in secure mode, where the
    /// loader drops LD_PRELOAD and the program keeps glibc's malloc.</summary>
    public static string? SecureModeHint(string name, string path)
    {
        string target;
        try
        {
            target = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        }
        catch (IOException)
        {
            target = path;
        }
        if (Libc.LStat(target, out var status) != 0) return null;
        var mode = (UnixFileMode)(status.Mode & 0xFFF);
        uint euid = Libc.GetEuid();
        bool setUser = (mode & UnixFileMode.SetUser) != 0 && status.Uid != euid;
        bool setGroup = (mode & UnixFileMode.SetGroup) != 0 && (mode & UnixFileMode.GroupExecute) != 0 && euid != 0;
        if (!setUser && !setGroup) return null;
        return $"{name} is a set-{(setUser ? "user" : "group")}-ID program: the loader ignores LD_PRELOAD for it, " +
               "so it runs with glibc's malloc and publishes no statistics (programs it starts may still)";
    }

    /// <param name="environment">variables to set in the child's environment; a null value removes one</param>
    public static Process Start(string name, string path, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?> environment)
    {
        var start = new ProcessStartInfo(path) { UseShellExecute = false };
        foreach (string arg in arguments) start.ArgumentList.Add(arg);
        foreach (var (key, value) in environment)
        {
            if (value is null) start.Environment.Remove(key);
            else start.Environment[key] = value;
        }
        try
        {
            return Process.Start(start) ?? throw new ToolException($"{name}: cannot be started", ExitCodes.CannotExecute);
        }
        catch (Win32Exception e)
        {
            // A race with the checks above, or exec itself refused (a binary for another machine).
            string reason = e.NativeErrorCode switch
            {
                2 => "No such file or directory",
                13 => "Permission denied",
                8 => "Exec format error",
                _ => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.NativeErrorCode),
            };
            throw new ToolException($"{name}: {reason}", e.NativeErrorCode == 2 ? ExitCodes.NotFound : ExitCodes.CannotExecute);
        }
    }
}
