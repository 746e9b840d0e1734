using System.Runtime.InteropServices;

namespace Konfiscator.Bench;

/// <summary>The two libc calls the harness needs.</summary>
internal static partial class Native
{
    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint RealPath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint p);

    [LibraryImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static partial nint GnuGetLibcVersion();

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    /// <summary>Clock ticks per second of /proc/stat (sysconf(_SC_CLK_TCK)).</summary>
    public static long ClockTicks()
    {
        long ticks = SysConf(2); // _SC_CLK_TCK
        return ticks > 0 ? ticks : 100;
    }

    [LibraryImport("libc", EntryPoint = "getuid")]
    public static partial uint GetUid();

    /// <summary>The canonical path (symbolic links and /lib → /usr/lib resolved), or the path itself
    /// when it cannot be resolved.</summary>
    public static string Canonical(string path)
    {
        nint p = RealPath(path, 0);
        if (p == 0) return path;
        try { return Marshal.PtrToStringUTF8(p) ?? path; }
        finally { Free(p); }
    }

    public static string? GlibcVersion()
    {
        try { return Marshal.PtrToStringUTF8(GnuGetLibcVersion()); }
        catch (EntryPointNotFoundException) { return null; }
    }
}
