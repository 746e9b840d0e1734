using System.Runtime.InteropServices;

namespace Konfiscator.Reader.Interop;

/// <summary>The few libc calls the reader needs that .NET does not expose: an open that refuses
/// symlinks, statx (fixed layout on every architecture), uids and signals.</summary>
internal static unsafe partial class Libc
{
    public const int O_RDONLY = 0x0;
    public const int O_NONBLOCK = 0x800;
    public const int O_NOFOLLOW = 0x20000;    // x86-64 and aarch64 (generic) agree
    public const int O_CLOEXEC = 0x80000;
    public const int O_DIRECTORY = 0x10000;

    public const int ELOOP = 40;
    public const int ENOENT = 2;
    public const int ENOTDIR = 20;
    public const int EPERM = 1;

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_BASIC_STATS = 0x7ff;

    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFLNK = 0xA000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static partial nint PRead(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UnlinkAt(int dirfd, string name, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    public const int X_OK = 1;

    /// <summary>access(2): 0 when the calling process may use the file as <paramref name="mode"/> asks.</summary>
    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Access(string path, int mode);

    [LibraryImport("libc", EntryPoint = "isatty")]
    public static partial int IsATty(int fd);

    [LibraryImport("libc", EntryPoint = "tcgetpgrp")]
    public static partial int TcGetPgrp(int fd);

    [LibraryImport("libc", EntryPoint = "getpgrp")]
    public static partial int GetPgrp();

    /// <summary>What statx says about a file (or, with an empty path and a descriptor, an open file).</summary>
    public readonly record struct FileStatus(int Mode, uint Uid, ulong Inode, ulong Size, long MtimeNs, long CtimeNs)
    {
        public bool IsRegular => (Mode & S_IFMT) == S_IFREG;
        public bool IsDirectory => (Mode & S_IFMT) == S_IFDIR;
        public bool IsSymlink => (Mode & S_IFMT) == S_IFLNK;
    }

    // struct statx (include/uapi/linux/stat.h): the same on every architecture.
    //   0 u32 mask, 4 u32 blksize, 8 u64 attributes, 16 u32 nlink, 20 u32 uid, 24 u32 gid,
    //  28 u16 mode, 32 u64 ino, 40 u64 size, 48 u64 blocks, 56 u64 attributes_mask,
    //  64 atime, 80 btime, 96 ctime, 112 mtime (each: i64 sec, u32 nsec, i32 pad)
    private const int StatxBufferSize = 256;

    public static int StatFd(int fd, out FileStatus status) => StatCore(fd, "", AT_EMPTY_PATH, out status);

    /// <summary>fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)-like: a name in an open directory, a symlink described, not followed.</summary>
    public static int LStatAt(int dirfd, string name, out FileStatus status) => StatCore(dirfd, name, AT_SYMLINK_NOFOLLOW, out status);

    /// <summary>lstat-like: a symlink is described, not followed.</summary>
    public static int LStat(string path, out FileStatus status) => StatCore(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, out status);

    private static int StatCore(int dirfd, string path, int flags, out FileStatus status)
    {
        byte* buffer = stackalloc byte[StatxBufferSize];
        new Span<byte>(buffer, StatxBufferSize).Clear();
        if (Statx(dirfd, path, flags, STATX_BASIC_STATS, buffer) != 0)
        {
            status = default;
            return Marshal.GetLastPInvokeError();
        }
        static long Time(byte* at) => *(long*)at * 1_000_000_000L + *(uint*)(at + 8);
        status = new FileStatus(
            Mode: *(ushort*)(buffer + 28),
            Uid: *(uint*)(buffer + 20),
            Inode: *(ulong*)(buffer + 32),
            Size: *(ulong*)(buffer + 40),
            MtimeNs: Time(buffer + 112),
            CtimeNs: Time(buffer + 96));
        return 0;
    }
}
