// Finding, creating and reserving segment files in the stats directory.
//
// Directory: $KONFISCATOR_STATS_DIR, else /dev/shm/konfiscator-<euid>, created
// mode 0700. It is opened without following a link (O_NOFOLLOW|O_DIRECTORY) and
// the opened directory must belong to this process's effective user and give
// no access to group or others; otherwise another user could read, delete or
// forge our segments, and nothing is published. Every file is then opened
// relative to that descriptor, also with O_NOFOLLOW.
//
// Files: <pid>.kstats for the first image of a process, <pid>.<n>.kstats for a
// later one (after exec the same pid runs a new image with new counters; the
// earlier image's file is marked final so the exporter folds it in).
//
// Space: the file is mapped shared, and a store into a page the filesystem
// cannot back (a full tmpfs) kills the process with SIGBUS. So every page that
// will be written is reserved with fallocate(2) before it is used: the header,
// process, arena and shared slots at creation, thread slots in chunks as
// threads claim them (Reserve). When the reservation fails the process counts
// privately (or the thread uses the shared slot) and says so in one line.
//
// Cleaning: a start (or fork) looks at a few directory entries at most
// (StartEntries, InspectedFiles), and only when no exporter is alive, and opens
// none named for a process that is alive; the exporter and `konfiscator clean`
// remove what is over. A full directory never slows a start down.

using System.Runtime;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Stats
{
    internal static unsafe class SegmentFile
    {
        private const int PathCapacity = 512;
        private const int NameCapacity = 64;
        private const int MaxSequence = 1000;
        /// <summary>Directory entries a start may look at ("." and ".." included), and segment
        /// files among them it may open.</summary>
        public const int StartEntries = 32, InspectedFiles = 8;
        private const int DirentBytes = 2048;
        private const int ZeroBytes = 4096;

        // The statics below are laid out in the order they are declared. Every start and every
        // fork child writes the small ones and the first fields of the scratch space; a fork
        // child's first write to each page of them copies the page (docs/performance/processes.md).
        // So the small ones come first, the scratch space's rarely used zeros last: a fork
        // child copies one page of them, not three (perf record -e page-faults -d).
        private static Libc.Stat s_stat;
        private static ulong s_startTime;
        private static int s_pid;
        private static int s_sequence;
        private static ulong s_fileDevice, s_fileInode;
        private static int s_publish = -1;   // -1: settings not read yet
        private static bool s_reported;      // a failure was reported (a fork child keeps quiet)
        private static int s_entriesExamined;

        private struct Scratch
        {
            public fixed byte Dir[PathCapacity];      // the directory's path (kept: Reserve reopens it)
            public fixed byte OwnName[NameCapacity];  // this process's file name (kept)
            public fixed byte Name[NameCapacity];
            public fixed byte Header[StatsLayout.HeaderSize];
            public fixed byte Text[64];
            public fixed byte Dirents[DirentBytes];
            public fixed byte Zeros[ZeroBytes];       // only where fallocate is not supported
        }
        // Used during initialization, in a fork child, and under the stats slot lock
        // (Reserve): never concurrently.
#pragma warning disable CS0169 // only ever used through `fixed`, which the compiler does not count
        private static Scratch s_scratch;
#pragma warning restore CS0169

        /// <summary>Whether this process publishes: not when KONFISCATOR_STATS is off, and never in a
        /// setuid/setgid process. Read once, so a fork child does not repeat a settings message.</summary>
        public static bool PublishingEnabled()
        {
            if (s_publish < 0)
                s_publish = !Settings.IsSecure && Settings.IsOn(StatsSchema.PublishVariable, defaultValue: true) ? 1 : 0;
            return s_publish != 0;
        }

        /// <summary>Directory entries the last start looked at (a test's measure of the work a start does).</summary>
        [RuntimeExport("konfiscator_debug_start_entries")]
        public static long StartEntriesExamined() => s_entriesExamined;

        /// <summary>Creates and maps this process's segment file of <paramref name="size"/> bytes, the
        /// first <paramref name="reserve"/> of them backed; null if publishing is not possible.</summary>
        public static byte* Create(nuint size, nuint reserve)
        {
            s_pid = Libc.getpid();
            s_startTime = ProcFs.StartTime(0);
            s_fileInode = 0;
            int dirfd = OpenDirectory();
            if (dirfd < 0) return null;

            bool exporterAlive = ExporterAlive(dirfd);
            int fd = -1;
            fixed (byte* name = s_scratch.OwnName)
            {
                for (int seq = 0; seq < MaxSequence && fd < 0; seq++)
                {
                    FileName(name, s_pid, seq);
                    fd = Libc.openat(dirfd, name, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0x180);
                    if (fd >= 0) { s_sequence = seq; break; }
                    if (Libc.Errno != Libc.EEXIST) break;
                    // Taken: by an earlier image of this very process (mark it final),
                    // or by a process that is over (remove it unless an exporter will).
                    int state = Inspect(dirfd, name, markOursFinal: true);
                    if (state == Over && !exporterAlive && Libc.unlinkat(dirfd, name, 0) == 0)
                        seq--; // retry the same name
                }
                if (fd < 0)
                    ReportFile("cannot create a segment in", Libc.Errno);
            }
            byte* mapping = null;
            if (fd >= 0)
            {
                if (!Remember(fd) || !Backed(fd, 0, reserve))
                    ReportFile("cannot reserve space for a segment in", Libc.Errno);
                else if (Libc.ftruncate(fd, (long)size) != 0)
                    ReportFile("cannot size a segment in", Libc.Errno);
                else
                {
                    // The pages past the reservation are holes: nothing touches them
                    // before Reserve has backed them.
                    void* p = Libc.mmap(null, size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
                    if (p != Libc.MAP_FAILED) mapping = (byte*)p;
                    else ReportFile("cannot map a segment in", Libc.Errno);
                }
                if (mapping == null)
                {
                    // Leave no half-made file behind for readers to puzzle over.
                    fixed (byte* name = s_scratch.OwnName) Libc.unlinkat(dirfd, name, 0);
                    s_fileInode = 0;
                }
                Libc.close(fd);
            }
            if (!exporterAlive) Tidy(dirfd);
            Libc.close(dirfd);
            return mapping;
        }

        /// <summary>Backs bytes [<paramref name="from"/>, <paramref name="to"/>) of this process's
        /// file, reopened by name (the library keeps no descriptor a program could close or
        /// reuse) and checked to be the same file. False when it cannot: the caller then does
        /// without those pages.</summary>
        public static bool Reserve(nuint from, nuint to)
        {
            if (s_fileInode == 0) return false;
            int dirfd;
            fixed (byte* dir = s_scratch.Dir)
                dirfd = Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (dirfd < 0) return false;
            int fd;
            fixed (byte* name = s_scratch.OwnName)
                fd = Libc.openat(dirfd, name, Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            Libc.close(dirfd);
            if (fd < 0) return false;
            bool ok;
            fixed (Libc.Stat* st = &s_stat)
                ok = Libc.fstat(fd, st) == 0 && st->Inode == s_fileInode && st->Device == s_fileDevice
                     && Backed(fd, from, to - from);
            Libc.close(fd);
            return ok;
        }

        public static void WriteHeader(byte* segment, int slotCount, int arenaSlots, int threadSlots, int threadSlotsUsed)
        {
            *(uint*)(segment + StatsLayout.OffArenaSlots) = (uint)arenaSlots;
            *(uint*)(segment + StatsLayout.OffThreadSlots) = (uint)threadSlots;
            *(uint*)(segment + StatsLayout.OffThreadSlotsUsed) = (uint)threadSlotsUsed;
            *(uint*)(segment + StatsLayout.OffVersion) = StatsLayout.Version;
            *(uint*)(segment + StatsLayout.OffHeaderSize) = StatsLayout.HeaderSize;
            *(uint*)(segment + StatsLayout.OffSlotSize) = StatsLayout.SlotSize;
            *(uint*)(segment + StatsLayout.OffSlotCount) = (uint)slotCount;
            *(int*)(segment + StatsLayout.OffPid) = s_pid;
            *(uint*)(segment + StatsLayout.OffFlags) = 0;
            *(ulong*)(segment + StatsLayout.OffStartTime) = s_startTime;
            *(uint*)(segment + StatsLayout.OffExecGeneration) = (uint)s_sequence;
            *(int*)(segment + StatsLayout.OffParentPid) = Libc.getppid();
            ProcFs.CommandName(segment + StatsLayout.OffCommand, StatsLayout.CommandBytes);
            Atomics.Write((ulong*)(segment + StatsLayout.OffMagic), StatsLayout.Magic);
        }

        // ---- space ----

        private static bool Remember(int fd)
        {
            fixed (Libc.Stat* st = &s_stat)
            {
                if (Libc.fstat(fd, st) != 0) return false;
                s_fileDevice = st->Device;
                s_fileInode = st->Inode;
                return true;
            }
        }

        /// <summary>Makes the filesystem allocate the range, so that stores into it through the
        /// mapping cannot fault. A filesystem without fallocate gets zeros written instead (a
        /// write fails with ENOSPC where a store would raise SIGBUS).</summary>
        private static bool Backed(int fd, nuint offset, nuint length)
        {
            if (length == 0) return true;
            if (Libc.fallocate(fd, 0, (long)offset, (long)length) == 0) return true;
            if (Libc.Errno != Libc.EOPNOTSUPP) return false;
            fixed (byte* zeros = s_scratch.Zeros)
            {
                for (nuint done = 0; done < length; )
                {
                    nuint chunk = length - done < ZeroBytes ? length - done : ZeroBytes;
                    nint n = Libc.pwrite(fd, zeros, chunk, (long)(offset + done));
                    if (n <= 0) { if (n == 0) Libc.SetErrno(Libc.ENOSPC); return false; }
                    done += (nuint)n;
                }
            }
            return true;
        }

        // ---- the directory ----

        /// <summary>The stats directory, opened and checked; -1 (after one line on stderr) when it
        /// cannot be used.</summary>
        private static int OpenDirectory()
        {
            fixed (byte* dir = s_scratch.Dir)
            {
                var path = new TextBuffer(dir, PathCapacity);
                uint euid = (uint)Libc.geteuid();
                byte* custom = Settings.Get(StatsSchema.DirectoryVariable);
                if (custom != null && *custom != 0)
                    path.AppendCString(custom);
                else
                {
                    path.Append(StatsSchema.DefaultDirectoryPrefix);
                    path.Append((ulong)euid);
                }
                if (!path.Complete)
                {
                    var line = Notice.Begin();
                    line.Append(StatsSchema.DirectoryVariable);
                    line.Append(" is too long (");
                    line.Append((ulong)(PathCapacity - 1));
                    line.Append(" bytes at most); counting privately, nothing is published");
                    Report(ref line);
                    return -1;
                }
                // Opened first and made only when missing: every start and every fork child
                // comes here, and the directory exists but for the first (a mkdir that fails
                // with EEXIST is a system call and a path lookup for nothing).
                int fd = Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                if (fd < 0 && Libc.Errno == Libc.ENOENT)
                {
                    Libc.mkdir(dir, 0x1C0); // 0700; EEXIST (another process made it) is fine, and any other failure shows in open
                    fd = Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                }
                if (fd < 0)
                {
                    int errno = Libc.Errno;
                    fixed (Libc.Stat* st = &s_stat)
                    {
                        // O_DIRECTORY|O_NOFOLLOW says ENOTDIR for a link too: tell them apart.
                        if (errno == Libc.ENOTDIR && Libc.lstat(dir, st) == 0 && (st->Mode & Libc.S_IFMT) == Libc.S_IFLNK)
                            ReportDirectory("is a symbolic link", 0);
                        else
                            ReportDirectory(null, errno);
                    }
                    return -1;
                }
                fixed (Libc.Stat* st = &s_stat)
                {
                    if (Libc.fstat(fd, st) != 0)
                    {
                        ReportDirectory(null, Libc.Errno);
                        Libc.close(fd);
                        return -1;
                    }
                    if (st->Uid != euid)
                    {
                        ReportOwner(st->Uid);
                        Libc.close(fd);
                        return -1;
                    }
                    if ((st->Mode & 0x3F) != 0) // any access for group or others
                    {
                        ReportMode(st->Mode);
                        Libc.close(fd);
                        return -1;
                    }
                }
                return fd;
            }
        }

        /// <summary>"konfiscator: stats directory DIR: <errno text>; counting privately, nothing is published".</summary>
        private static void ReportDirectory(string problem, int errno)
        {
            var line = BeginDirectoryLine();
            if (problem != null) { line.Append((byte)' '); line.Append(problem); }
            else { line.Append(": "); Notice.AppendError(ref line, errno); }
            EndAndReport(ref line);
        }

        private static void ReportOwner(uint owner)
        {
            var line = BeginDirectoryLine();
            line.Append(" belongs to uid ");
            line.Append((ulong)owner);
            line.Append(", not to this user (uid ");
            line.Append((ulong)Libc.geteuid());
            line.Append((byte)')');
            EndAndReport(ref line);
        }

        private static void ReportMode(uint mode)
        {
            var line = BeginDirectoryLine();
            line.Append(" is open to other users (mode ");
            Notice.AppendOctal(ref line, mode & 0x1FF);
            line.Append("; it must be 0700)");
            EndAndReport(ref line);
        }

        private static TextBuffer BeginDirectoryLine()
        {
            var line = Notice.Begin();
            line.Append("stats directory ");
            fixed (byte* dir = s_scratch.Dir) Notice.AppendQuoted(ref line, dir);
            return line;
        }

        private static void EndAndReport(ref TextBuffer line)
        {
            line.Append("; counting privately, nothing is published");
            Report(ref line);
        }

        private static void ReportFile(string what, int errno)
        {
            var line = Notice.Begin();
            line.Append(what);
            line.Append((byte)' ');
            fixed (byte* dir = s_scratch.Dir) Notice.AppendQuoted(ref line, dir);
            line.Append(": ");
            Notice.AppendError(ref line, errno);
            EndAndReport(ref line);
        }

        /// <summary>Sends a failure line, once per process: a fork child of a process that
        /// reported already stays quiet (it inherits s_reported).</summary>
        private static void Report(ref TextBuffer line)
        {
            if (s_reported) return;
            s_reported = true;
            Notice.Send(ref line);
        }

        private static void FileName(byte* name, int pid, int seq)
        {
            var n = new TextBuffer(name, NameCapacity);
            n.Append((ulong)pid);
            if (seq > 0) { n.Append((byte)'.'); n.Append((ulong)seq); }
            n.Append(StatsSchema.SegmentSuffix);
        }

        /// <summary>True while the exporter named in exporter.pid is running.</summary>
        private static bool ExporterAlive(int dirfd)
        {
            fixed (byte* text = s_scratch.Text)
            {
                var name = new TextBuffer(text, 64);
                name.Append(StatsSchema.ExporterPidFile);
                int fd = Libc.openat(dirfd, text, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                if (fd < 0) return false;
                nint n = Libc.read(fd, text, 63);
                Libc.close(fd);
                if (n <= 0) return false;
                text[n] = 0;
                int pid = (int)TextBuffer.ParseUnsigned(text, out int used);
                if (used == 0 || text[used] != (byte)' ') return false;
                ulong start = TextBuffer.ParseUnsigned(text + used + 1, out int used2);
                if (used2 == 0 || !ProcFs.IsAlive(pid)) return false;
                return ProcFs.StartTime(pid) == start;
            }
        }

        private const int Foreign = 0, Live = 1, Over = 2;

        /// <summary>Classifies an existing segment file: Foreign (not a segment), Live or Over.</summary>
        private static int Inspect(int dirfd, byte* name, bool markOursFinal)
        {
            int fd = Libc.openat(dirfd, name, Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (fd < 0) return Foreign;
            int result = Foreign;
            fixed (byte* header = s_scratch.Header)
            {
                if (Libc.pread(fd, header, StatsLayout.HeaderSize, 0) == StatsLayout.HeaderSize &&
                    *(ulong*)(header + StatsLayout.OffMagic) == StatsLayout.Magic)
                {
                    int pid = *(int*)(header + StatsLayout.OffPid);
                    ulong start = *(ulong*)(header + StatsLayout.OffStartTime);
                    uint flags = *(uint*)(header + StatsLayout.OffFlags);
                    if (pid == s_pid && start == s_startTime)
                    {
                        // An earlier image of this process (before exec): it is over now.
                        if (markOursFinal && (flags & StatsLayout.FlagFinal) == 0)
                        {
                            uint final = flags | StatsLayout.FlagFinal;
                            Libc.pwrite(fd, &final, 4, StatsLayout.OffFlags);
                        }
                        result = Live; // its file stays for the exporter to fold in
                    }
                    else
                    {
                        // Whether or not the image was replaced by exec (marked final), its file
                        // stays while its process runs: freed, the name would be taken by a later
                        // image of that process, below the image it replaces, and readers, which
                        // take the highest generation for a process's current image, would show
                        // the replaced one (a program started through shell scripts that exec,
                        // such as pyenv's shims, showed as "bash").
                        result = ProcFs.IsAlive(pid) && ProcFs.StartTime(pid) == start ? Live : Over;
                    }
                }
            }
            Libc.close(fd);
            return result;
        }

        /// <summary>Removes the files of processes that are over among the first few entries of
        /// the directory (no exporter will). Bounded: one short read of the directory, and at most
        /// InspectedFiles segments opened, starting at an entry chosen by the pid so that
        /// processes do not all look at the same few files.</summary>
        private static void Tidy(int dirfd)
        {
            fixed (byte* buffer = s_scratch.Dirents)
            {
                long n = Libc.syscall(Libc.SYS_getdents64, (void*)(nint)dirfd, (long)buffer, DirentBytes, null, null, 0);
                // struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
                int count = 0;
                for (long offset = 0; offset < n && count < StartEntries; count++)
                    offset += *(ushort*)(buffer + offset + 16);
                s_entriesExamined = count;
                if (count == 0) return;
                int first = s_pid % count, inspected = 0;
                long at = 0;
                for (int i = 0; i < first; i++) at += *(ushort*)(buffer + at + 16);
                for (int i = 0; i < count && inspected < InspectedFiles; i++)
                {
                    if (first + i == count) at = 0; // wrap around to the first entry
                    byte* entryName = buffer + at + 19;
                    // A file named for a process that is alive (this one's among them) is kept
                    // without being opened: it is that process's (a later image's, or its own),
                    // unless the pid was reused, and then the exporter, `konfiscator clean` or a
                    // start after the pid's new process ends removes it. Opening and reading the
                    // header of every live process's file cost about 25 µs each, at every start
                    // and every fork (docs/performance/processes.md); a process alive is one
                    // kill(pid, 0).
                    if (IsSegmentName(entryName) && !ProcFs.IsAlive((int)TextBuffer.ParseUnsigned(entryName, out _)))
                    {
                        inspected++;
                        if (Inspect(dirfd, entryName, markOursFinal: false) == Over)
                            Libc.unlinkat(dirfd, entryName, 0);
                    }
                    at += *(ushort*)(buffer + at + 16);
                }
            }
        }

        private static bool IsSegmentName(byte* name)
        {
            int length = 0;
            while (name[length] != 0) length++;
            const string suffix = StatsSchema.SegmentSuffix;
            if (length <= suffix.Length) return false;
            fixed (char* s = suffix)
                for (int i = 0; i < suffix.Length; i++)
                    if (name[length - suffix.Length + i] != (byte)s[i]) return false;
            return name[0] >= (byte)'0' && name[0] <= (byte)'9';
        }
    }
}
