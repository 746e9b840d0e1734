using System.Runtime.InteropServices;

namespace Konfiscator.Native.Tests.Native;

/// <summary>struct mallinfo2 (malloc.h): ten size_t fields.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MallInfo2
{
    public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
}

/// <summary>struct mallinfo (malloc.h): the same ten fields as int.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MallInfo
{
    public int Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
}

/// <summary>glibc's inspection calls, called as C callers call them (structs returned by value).</summary>
internal sealed unsafe partial class LibKonfiscator
{
    public const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3, M_MMAP_MAX = -4, M_ARENA_MAX = -8;

    public MallInfo2 Mallinfo2() => ((delegate* unmanaged<MallInfo2>)Export(_handle, "mallinfo2"))();

    public MallInfo Mallinfo() => ((delegate* unmanaged<MallInfo>)Export(_handle, "mallinfo"))();

    public int MallocTrim(nuint pad) => ((delegate* unmanaged<nuint, int>)Export(_handle, "malloc_trim"))(pad);

    public int Mallopt(int param, int value) => ((delegate* unmanaged<int, int, int>)Export(_handle, "mallopt"))(param, value);

    /// <summary>malloc_info(options, fp) into a temporary file; returns its status and the text.</summary>
    public (int Status, string Text) MallocInfo(int options)
    {
        string path = System.IO.Path.GetTempFileName();
        try
        {
            nint file = FOpen(path, "w");
            if (file == 0) throw new IOException($"fopen({path}) failed");
            int status = ((delegate* unmanaged<int, nint, int>)Export(_handle, "malloc_info"))(options, file);
            FClose(file);
            return (status, File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [DllImport("libc", EntryPoint = "fopen")]
    private static extern nint FOpen([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string mode);

    [DllImport("libc", EntryPoint = "fclose")]
    private static extern int FClose(nint file);
}
