using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests.Support;

/// <summary>What the machine lets a test do, asked at run time. Each property is null when the
/// thing can be done, else the reason it cannot (shown as the test's skip reason).</summary>
internal static class Privileges
{
    public static bool IsRoot => GetEuid() == 0;

    /// <summary>A private mount namespace with a tmpfs of its own: needs root and unshare(1).</summary>
    public static string? MountNamespaceUnavailable => s_mountNamespace.Value;

    /// <summary>A setuid-root program run by user nobody: needs root, setpriv(1), a temporary
    /// directory whose mount honours setuid bits, and no no_new_privs on this process.</summary>
    public static string? SetuidUnavailable => s_setuid.Value;

    /// <summary>Running a program as user nobody (setpriv): needs root and setpriv(1).</summary>
    public static string? OtherUserUnavailable =>
        !IsRoot ? "needs root to run a program as another user (this test runs as uid " + GetEuid() + ")"
        : Tools.Find("setpriv") is null ? "needs setpriv (util-linux) to run a program as user nobody"
        : null;

    private static readonly Lazy<string?> s_mountNamespace = new(() =>
    {
        if (!IsRoot) return $"needs root for a private mount namespace with its own tmpfs (this test runs as uid {GetEuid()})";
        string? unshare = Tools.Find("unshare");
        if (unshare is null) return "needs unshare (util-linux) for a private mount namespace";
        using var dir = new TempDir("konfiscator-mount-check");
        var result = ChildProcess.Run(unshare, ["-m", "--", "mount", "-t", "tmpfs", "-o", "size=64k", "konfiscator-check", dir.Path]);
        return result.ExitCode == 0 ? null : $"cannot mount a tmpfs in a private mount namespace here: {result.Stderr.Trim()}";
    });

    private static readonly Lazy<string?> s_setuid = new(() =>
    {
        if (OtherUserUnavailable is { } reason) return reason;
        string status = File.ReadAllText("/proc/self/status");
        if (status.Contains("NoNewPrivs:\t1", StringComparison.Ordinal))
            return "this process runs with no_new_privs, so the kernel ignores setuid bits";
        string tmp = Path.GetTempPath();
        var mount = File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 5 && (tmp.StartsWith(f[4].TrimEnd('/') + "/", StringComparison.Ordinal) || f[4] == tmp.TrimEnd('/')))
            .OrderByDescending(f => f[4].Length)
            .FirstOrDefault();
        if (mount is not null && mount[5].Split(',').Contains("nosuid"))
            return $"{tmp} is on a nosuid mount ({mount[4]}), so the kernel ignores setuid bits there";
        return null;
    });

    /// <summary>Locking all of a process's memory (mlockall) past the default 8 MiB limit: needs root.</summary>
    public static string? MemoryLockUnavailable =>
        !IsRoot ? $"needs root to lock more than RLIMIT_MEMLOCK allows with mlockall (this test runs as uid {GetEuid()})" : null;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEuid();
}

/// <summary>A fact that is skipped, with the reason computed when the tests are discovered,
/// when a private mount namespace cannot be made (not root, no unshare).</summary>
internal sealed class MountNamespaceFactAttribute : FactAttribute
{
    public MountNamespaceFactAttribute()
    {
        if (Privileges.MountNamespaceUnavailable is { } reason) Skip = reason;
    }
}

/// <summary>A fact skipped when a setuid program cannot be run by another user here.</summary>
internal sealed class SetuidFactAttribute : FactAttribute
{
    public SetuidFactAttribute()
    {
        if (Privileges.SetuidUnavailable is { } reason) Skip = reason;
    }
}

/// <summary>A fact skipped when a program cannot be run as another user here.</summary>
internal sealed class OtherUserFactAttribute : FactAttribute
{
    public OtherUserFactAttribute()
    {
        if (Privileges.OtherUserUnavailable is { } reason) Skip = reason;
    }
}

/// <summary>A fact skipped when a program cannot lock all its memory here (not root).</summary>
internal sealed class MemoryLockFactAttribute : FactAttribute
{
    public MemoryLockFactAttribute()
    {
        if (Privileges.MemoryLockUnavailable is { } reason) Skip = reason;
    }
}
