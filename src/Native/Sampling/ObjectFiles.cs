// Where the unwinder reads an object's call frame tables (.eh_frame_hdr, .eh_frame):
// from the file the object was loaded from, with pread, rather than through its
// mapping.
//
// Why: reading a table through the mapping faults its pages into the process, and
// the kernel maps up to 64 KiB of neighbouring pages with each fault (fault-around).
// A sampled stack runs through the program's frames and libc's bottom frames
// (__libc_start_call_main, start_thread), whose entries lie scattered over tables
// of hundreds of KiB that nothing else in the process reads: with the default
// sampling that was 130-200 KiB more peak RSS in a small program and 300-650 KiB in
// python3 (docs/performance/memory.md). A pread copies the few bytes a lookup needs
// and maps nothing.
//
// The file must be the one that is mapped: a package upgrade may have replaced it
// since the object was loaded. So the first page the object mapped (its ELF header,
// program headers and build-id note) must equal the file's first bytes, and only
// then is the file used. Whenever the file cannot be used (no name, no /proc for
// the main program, a replaced or unreadable file, a table outside the file's
// loaded parts, a process under a seccomp filter, where a system call the filter
// does not expect may kill it) the tables are read through the mapping as before.
//
// One object's file is open at a time, from the first lookup that needs it to the
// end of the walk (Unwinder.Walk closes it): a program never sees the descriptor
// between two calls of its own. The system calls go through syscall(), not libc's
// wrappers: those lie in pages of libc's code that nothing else here runs, and the
// first call of each would fault another 64 KiB of it in. Everything here runs
// under the unwinder's lock.

using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class ObjectFiles
    {
        private const int PageBytes = 4096;
        private const int MaxLoads = 8;
        private const int ProgramHeaderBytes = 56;

        private static ulong s_header;          // the .eh_frame_hdr of the object in use, 0 for none
        private static int s_fd = -1;           // its file, -1 when read through the mapping
        private static ulong s_bias;            // its load bias: run-time address = file address + bias
        private static int s_loadCount;
        private struct Loads
        {
            public fixed ulong VirtualAddress[MaxLoads];
            public fixed ulong FileSize[MaxLoads];
            public fixed ulong Offset[MaxLoads];
        }
        /// <summary>The headers compared with the file are read this much at a time: all of them
        /// in one read for the objects seen (ELF header, program headers and notes: 700-1 000
        /// bytes); in chunks of 256, each open made four reads (strace, gcc).</summary>
        private const int ChunkBytes = 1024;
        private struct Chunk { public fixed byte Bytes[ChunkBytes]; }
        private struct PathBuffer { public fixed byte Bytes[16]; }
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static Loads s_loads;
        private static Chunk s_chunk;
        private static PathBuffer s_exe;
#pragma warning restore CS0169, CS0649

        // What the lookups read from (Debug's konfiscator_debug_unwind_reads, for tests).
        public static ulong FileReads, MappingReads;

        /// <summary>Off for the unwinder's first walk at start-up (Unwinder.Initialize).</summary>
        public static bool ReadFiles;

        /// <summary>Reads the tables of the object whose .eh_frame_hdr is at
        /// <paramref name="header"/> from now on: its file when it can be used. <paramref
        /// name="linkMap"/> is the dynamic linker's struct link_map of it (l_addr, l_name
        /// first), <paramref name="mapStart"/> the lowest address it mapped.</summary>
        public static void Use(ulong header, void* linkMap, ulong mapStart)
        {
            if (header == s_header) return;
            Close();
            s_header = header;
            if (linkMap != null && ReadFiles) s_fd = OpenMatching(linkMap, mapStart);
        }

        /// <summary>Closes the file in use, if any (the end of a walk).</summary>
        public static void Close()
        {
            // Only if the number still names the file opened: a thread of the program that
            // closed it (closefrom) may have opened something else under it since.
            if (s_fd >= 0 && SameFile(s_fd)) CloseFile(s_fd);
            s_fd = -1;
            s_header = 0;
        }

        private static ulong s_device, s_inode;
        private static Libc.Stat s_stat;

        /// <summary>Whether <paramref name="fd"/> is the file whose identity Remember kept.</summary>
        private static bool SameFile(int fd) => Identify(fd, out ulong device, out ulong inode) && device == s_device && inode == s_inode;

        private static bool Remember(int fd) => Identify(fd, out s_device, out s_inode);

        /// <summary>The device and inode of the file open as <paramref name="fd"/> (fstat).</summary>
        private static bool Identify(int fd, out ulong device, out ulong inode)
        {
            fixed (Libc.Stat* st = &s_stat)
            {
                bool ok = Libc.syscall(Libc.SYS_fstat, (void*)fd, (long)st, 0, null, null, 0) == 0;
                device = ok ? st->Device : 0;
                inode = ok ? st->Inode : 0;
                return ok;
            }
        }

        /// <summary><paramref name="bytes"/> bytes of the object in use at run-time address
        /// <paramref name="address"/> into <paramref name="to"/>: from its file when it is
        /// open and holds them, else through the mapping.</summary>
        public static void Read(ulong address, void* to, int bytes)
        {
            if (TryReadFile(address, to, bytes)) return;
            MappingReads++;
            Libc.memcpy(to, (void*)address, (nuint)bytes);
        }

        private static bool PreadAll(int fd, void* to, int bytes, long offset) =>
            Libc.syscall(Libc.SYS_pread64, (void*)fd, (long)to, bytes, (void*)offset, null, 0) == bytes;

        /// <summary>As Read, from the file only: false (nothing read) when no file is open or
        /// the range is not all in its loaded parts. For reads that may run past what they
        /// need (the caller then reads exactly), which through the mapping could run off it.</summary>
        public static bool TryReadFile(ulong address, void* to, int bytes)
        {
            if (s_fd < 0) return false;
            long offset = FileOffset(address, (ulong)bytes);
            if (offset < 0 || !PreadAll(s_fd, to, bytes, offset)) return false;
            FileReads++;
            return true;
        }

        /// <summary>Where [address, address + bytes) lies in the file: inside one loaded
        /// segment's file part, or -1.</summary>
        private static long FileOffset(ulong address, ulong bytes)
        {
            ulong at = address - s_bias;
            fixed (Loads* loads = &s_loads)
            {
                for (int i = 0; i < s_loadCount; i++)
                {
                    ulong start = loads->VirtualAddress[i];
                    if (at >= start && at - start + bytes <= loads->FileSize[i])
                        return (long)(loads->Offset[i] + (at - start));
                }
            }
            return -1;
        }

        /// <summary>The object's file opened, if it is the one mapped; -1 otherwise.</summary>
        private static int OpenMatching(void* linkMap, ulong mapStart)
        {
            // The mapping's first page: the ELF header and program headers, as the file's
            // first segment starts at offset 0 (anything else: the mapping is read instead).
            byte* image = (byte*)mapStart;
            if (image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F' || image[4] != 2)
                return -1;
            ulong programHeaders = *(ulong*)(image + 32);
            ushort entrySize = *(ushort*)(image + 54), count = *(ushort*)(image + 56);
            if (entrySize != ProgramHeaderBytes || count == 0 || programHeaders + (ulong)count * ProgramHeaderBytes > PageBytes)
                return -1;

            // Its loaded segments; the bytes compared with the file: the ELF header, the program
            // headers and the notes (the build ID) that the first page holds.
            s_bias = *(ulong*)linkMap;                             // l_addr
            s_loadCount = 0;
            ulong compared = programHeaders + (ulong)count * ProgramHeaderBytes, firstPageFromFile = 0;
            fixed (Loads* loads = &s_loads)
            {
                for (int i = 0; i < count; i++)
                {
                    var h = (ElfProgramHeader*)(image + programHeaders + (ulong)i * ProgramHeaderBytes);
                    if (h->Type == DynamicLinker.PT_NOTE && h->Offset + h->FileSize <= PageBytes && h->Offset + h->FileSize > compared)
                        compared = h->Offset + h->FileSize;
                    if (h->Type != DynamicLinker.PT_LOAD) continue;
                    if (s_loadCount == MaxLoads) return -1;
                    loads->VirtualAddress[s_loadCount] = h->VirtualAddress;
                    loads->FileSize[s_loadCount] = h->FileSize;
                    loads->Offset[s_loadCount] = h->Offset;
                    s_loadCount++;
                    if (h->Offset == 0 && s_bias + h->VirtualAddress == mapStart)
                        firstPageFromFile = h->FileSize < PageBytes ? h->FileSize : PageBytes;
                }
            }
            if (compared > firstPageFromFile) return -1;

            // A filter may kill the process for an open it does not expect.
            if (Libc.UnderSeccomp()) return -1;
            byte* name = *(byte**)((byte*)linkMap + 8);            // l_name; "" for the main program
            int fd;
            if (name != null && name[0] != 0)
            {
                if (name[0] != (byte)'/') return -1;             // the vDSO, or a path relative to a cwd that may have moved
                fd = Open(name);
            }
            else
            {
                fixed (byte* exe = s_exe.Bytes)
                {
                    var path = new TextBuffer(exe, 16);
                    path.Append("/proc/self/exe");
                    fd = Open(exe);
                }
            }
            if (fd < 0) return -1;
            fixed (byte* chunk = s_chunk.Bytes)
            {
                for (ulong at = 0; at < compared; at += ChunkBytes)
                {
                    int bytes = compared - at < ChunkBytes ? (int)(compared - at) : ChunkBytes;
                    bool same = PreadAll(fd, chunk, bytes, (long)at);
                    for (int i = 0; same && i < bytes; i++) same = chunk[i] == image[at + (ulong)i];
                    if (same) continue;
                    CloseFile(fd);
                    return -1;
                }
            }
            if (Remember(fd)) return fd;
            CloseFile(fd);
            return -1;
        }

        private static void CloseFile(int fd) => Libc.syscall(Libc.SYS_close, (void*)fd, 0, 0, null, null, 0);

        private static int Open(byte* path) =>
            (int)Libc.syscall(Libc.SYS_openat, (void*)Libc.AT_FDCWD, (long)path, Libc.O_RDONLY | Libc.O_CLOEXEC, null, null, 0);
    }
}
