// The thin platform layer: every libc function the allocator calls, and nothing
// that may itself call malloc (that would recurse into us). Messages go out with
// write(2), memory comes from mmap(2), locks sleep with futex(2).

using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Libc
    {
        public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
        public const int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000, MAP_SHARED = 0x01, MAP_FIXED = 0x10;
        public const int MREMAP_MAYMOVE = 1;
        public const int MADV_DONTNEED = 4, MADV_POPULATE_WRITE = 23;
        public static readonly void* MAP_FAILED = (void*)(-1);

        public const int ENOMEM = 12, EINVAL = 22, EEXIST = 17, EINTR = 4, EAGAIN = 11, ENOSYS = 38;
        public const int ENOENT = 2, EACCES = 13, ENOTDIR = 20, ENOSPC = 28, EROFS = 30, ELOOP = 40,
                         EDQUOT = 122, EOPNOTSUPP = 95, EPERM = 1;
        public const ulong AT_SECURE = 23;

        public const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200,
                         O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_DIRECTORY = 0x10000;

        public const long SYS_futex = 202, SYS_gettid = 186, SYS_getdents64 = 217, SYS_sched_getaffinity = 204,
                          SYS_pread64 = 17, SYS_openat = 257, SYS_close = 3, SYS_prctl = 157, SYS_fstat = 5;
        public const int AT_FDCWD = -100;
        public const int FUTEX_WAIT_PRIVATE = 128, FUTEX_WAKE_PRIVATE = 129;

        [DllImport("libc")] public static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);
        [DllImport("libc")] public static extern int munmap(void* addr, nuint length);
        [DllImport("libc")] public static extern int mprotect(void* address, nuint length, int protection);
        [DllImport("libc")] public static extern void* mremap(void* oldAddress, nuint oldSize, nuint newSize, int flags);
        [DllImport("libc")] public static extern int madvise(void* addr, nuint length, int advice);
        [DllImport("libc")] public static extern nint write(int fd, void* buf, nuint count);
        [DllImport("libc")] public static extern nint read(int fd, void* buf, nuint count);
        [DllImport("libc")] public static extern int open(byte* path, int flags, int mode);
        [DllImport("libc")] public static extern int close(int fd);
        [DllImport("libc")] public static extern int openat(int dirfd, byte* path, int flags, int mode);
        [DllImport("libc")] public static extern int unlinkat(int dirfd, byte* path, int flags);
        [DllImport("libc")] public static extern nint pread(int fd, void* buf, nuint count, long offset);
        [DllImport("libc")] public static extern nint pwrite(int fd, void* buf, nuint count, long offset);
        [DllImport("libc"), SuppressGCTransition] public static extern void* memcpy(void* destination, void* source, nuint count);
        [DllImport("libc")] public static extern void* memmove(void* destination, void* source, nuint count);
        [DllImport("libc"), SuppressGCTransition] public static extern void* memset(void* destination, int value, nuint count);
        [DllImport("libc")] public static extern int ftruncate(int fd, long length);
        [DllImport("libc")] public static extern int mkdir(byte* path, int mode);
        [DllImport("libc")] public static extern int getpid();
        [DllImport("libc")] public static extern int getppid();
        [DllImport("libc")] public static extern int kill(int pid, int sig);
        [DllImport("libc")] public static extern void abort();
        [DllImport("libc"), SuppressGCTransition] public static extern int* __errno_location();
        [DllImport("libc")] public static extern long syscall(long number, void* a1, long a2, long a3, void* a4, void* a5, long a6);
        [DllImport("libc")] public static extern int sched_yield();

        /// <summary>The calling thread's kernel id, by the raw system call (glibc has a gettid
        /// wrapper only since 2.30).</summary>
        public static int gettid() => (int)syscall(SYS_gettid, null, 0, 0, null, null, 0);
        /// <summary>True while the process runs under a seccomp filter (or in strict mode), which
        /// may kill it for a system call or an argument the filter does not expect. Asked each
        /// time: a program may install a filter at any moment. By the raw system call, not
        /// prctl(): that wrapper lies in a page of libc's code nothing else here runs.</summary>
        public static bool UnderSeccomp() => syscall(SYS_prctl, (void*)PR_GET_SECCOMP, 0, 0, null, null, 0) != 0;
        [DllImport("libc")] public static extern nuint pthread_self();
        [DllImport("libc")] public static extern byte* getenv(byte* name);
        [DllImport("libc")] public static extern ulong getauxval(ulong type);
        [DllImport("libc")] public static extern int geteuid();
        [DllImport("libc")] public static extern int fstat(int fd, Stat* buffer);
        [DllImport("libc")] public static extern int lstat(byte* path, Stat* buffer);
        // glibc's fallocate is the system call itself (posix_fallocate may emulate by writing).
        [DllImport("libc")] public static extern int fallocate(int fd, int mode, long offset, long length);

        public const int PR_GET_SECCOMP = 21;

        [DllImport("libc")] public static extern int pthread_key_create(uint* key, delegate* unmanaged<void*, void> destructor);
        // The hot calls skip the P/Invoke frame (see the csproj on RhpTrapThreads).
        [DllImport("libc"), SuppressGCTransition] public static extern void* pthread_getspecific(uint key);
        /// <summary>pthread_self() for the fast paths: two instructions in glibc, no frame. Declared
        /// as a runtime import, which the compiler calls directly as it calls its own helpers: as a
        /// DllImport with SuppressGCTransition it also tested RhpTrapThreads after the call (two
        /// instructions on every malloc and free, and one more register saved in malloc).</summary>
        [MethodImpl(MethodImplOptions.InternalCall), RuntimeImport("pthread_self")] public static extern byte* pthread_self_fast();
        [DllImport("libc")] public static extern int pthread_setspecific(uint key, void* value);
        [DllImport("libc")] public static extern int pthread_atfork(delegate* unmanaged<void> prepare, delegate* unmanaged<void> parent, delegate* unmanaged<void> child);

        public static void SetErrno(int value) => *__errno_location() = value;
        public static int Errno => *__errno_location();

        public const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IFREG = 0x8000;

        /// <summary>struct stat on x86-64 (144 bytes); only the fields the library reads are named.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 144)]
        public struct Stat
        {
            [FieldOffset(0)] public ulong Device;
            [FieldOffset(8)] public ulong Inode;
            [FieldOffset(24)] public uint Mode;
            [FieldOffset(28)] public uint Uid;
            [FieldOffset(48)] public long Size;
        }
    }
}
