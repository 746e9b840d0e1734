using System.Runtime.InteropServices;

namespace Konfiscator.Native.Tests.Native;

/// <summary>The few libc facilities the in-process tests need besides the library itself.</summary>
internal static unsafe class Libc
{
    public const int ENOMEM = 12;
    public const int EINVAL = 22;

    /// <summary>The calling thread's errno. Calls through function pointers do not go through
    /// the marshaller's SetLastError machinery, so tests clear and read errno directly, on the
    /// same thread, right around the call.</summary>
    public static int Errno
    {
        get => *ErrnoLocation();
        set => *ErrnoLocation() = value;
    }

    [DllImport("libc", EntryPoint = "__errno_location")]
    private static extern int* ErrnoLocation();

    /// <summary>The process environment as libc (and so the library) sees it; .NET's
    /// Environment.SetEnvironmentVariable only changes a managed copy.</summary>
    [DllImport("libc", EntryPoint = "setenv")]
    public static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    [DllImport("libc", EntryPoint = "unsetenv")]
    public static extern int UnsetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    /// <summary>mincore(2) fails with ENOMEM for a range that is not mapped: how the tests see
    /// that a large block's mapping went back to the OS.</summary>
    [DllImport("libc", EntryPoint = "mincore", SetLastError = true)]
    public static extern int MinCore(nint address, nuint length, byte* vector);
}
