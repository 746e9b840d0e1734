// Finding, creating and cleaning up segment files in the stats directory.
//
// Directory: $KONFISCATOR_STATS_DIR, else /dev/shm/konfiscator-<uid>, mode 0700.
// Files: <pid>.kstats for the first image of a process, <pid>.<n>.kstats for a
// later one (after exec the same pid runs a new image with new counters; the
// earlier image's file is marked final so the exporter folds it in).
// Every open uses O_NOFOLLOW: a link planted in the directory is never written
// through. When no exporter is alive to collect them, a starting process removes
// files of processes that are over, so the directory never grows without bound.

using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Stats
{
    internal static unsafe class SegmentFile
    {
        private const int PathCapacity = 512;
        private const int DirentBytes = 4096;
        private const int MaxSequence = 1000;
        private const int MaxSweptEntries = 100000;

        private struct Scratch
        {
            public fixed byte Dir[PathCapacity];
            public fixed byte Name[64];
            public fixed byte Header[StatsLayout.HeaderSize];
            public fixed byte Dirents[DirentBytes];
            public fixed byte Text[64];
        }
        // Used only during initialization and in a fork child: never concurrently.
        #pragma warning disable CS0169 // only ever used through `fixed`, which the compiler does not count
        private static Scratch s_scratch;
#pragma warning restore CS0169
        private static ulong s_startTime;
        private static int s_pid;
        private static int s_sequence;

        public static bool PublishingEnabled() => !Settings.IsOff("KONFISCATOR_STATS");

        /// <summary>Creates and maps this process's segment file; null if publishing is not possible.</summary>
        public static byte* Create(nuint size, int slotCount)
        {
            s_pid = Libc.getpid();
            s_startTime = ProcFs.StartTime(0);
            int dirfd = OpenDirectory();
            if (dirfd < 0) return null;

            bool exporterAlive = ExporterAlive(dirfd);
            int fd = -1;
            fixed (byte* name = s_scratch.Name)
            {
                for (int seq = 0; seq < MaxSequence && fd < 0; seq++)
                {
                    FileName(name, s_pid, seq);
                    fd = Libc.openat(dirfd, name, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0x180);
                    if (fd >= 0) { s_sequence = seq; break; }
                    if (*Libc.__errno_location() != Libc.EEXIST) break;
                    // Taken: by an earlier image of this very process (mark it final),
                    // or by a process that is over (remove it unless an exporter will).
                    int state = Inspect(dirfd, name, markOursFinal: true);
                    if (state == Over && !exporterAlive && Libc.unlinkat(dirfd, name, 0) == 0)
                        seq--; // retry the same name
                }
            }
            byte* mapping = null;
            if (fd >= 0)
            {
                if (Libc.ftruncate(fd, (long)size) == 0)
                {
                    void* p = Libc.mmap(null, size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
                    if (p != Libc.MAP_FAILED) mapping = (byte*)p;
                }
                Libc.close(fd);
            }
            if (!exporterAlive) Sweep(dirfd);
            Libc.close(dirfd);
            return mapping;
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

        // ---- the directory ----

        private static int OpenDirectory()
        {
            fixed (byte* dir = s_scratch.Dir)
            {
                var path = new TextBuffer(dir, PathCapacity);
                byte* custom = Settings.Get("KONFISCATOR_STATS_DIR");
                if (custom != null && *custom != 0)
                    path.AppendCString(custom);
                else
                {
                    path.Append("/dev/shm/konfiscator-");
                    path.Append((ulong)Libc.getuid());
                }
                if (!path.Complete) return -1;
                Libc.mkdir(dir, 0x1C0); // 0700; EEXIST is fine
                // O_NOFOLLOW: a symlink planted in place of the directory is refused.
                return Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            }
        }

        private static void FileName(byte* name, int pid, int seq)
        {
            var n = new TextBuffer(name, 64);
            n.Append((ulong)pid);
            if (seq > 0) { n.Append((byte)'.'); n.Append((ulong)seq); }
            n.Append(".kstats");
        }

        /// <summary>True while the exporter named in exporter.pid is running.</summary>
        private static bool ExporterAlive(int dirfd)
        {
            fixed (byte* text = s_scratch.Text)
            {
                var name = new TextBuffer(text, 64);
                name.Append("exporter.pid");
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
                    if ((flags & StatsLayout.FlagFinal) != 0)
                        result = Over;
                    else if (pid == s_pid && start == s_startTime)
                    {
                        // An earlier image of this process (before exec): it is over now.
                        if (markOursFinal)
                        {
                            uint final = flags | StatsLayout.FlagFinal;
                            Libc.pwrite(fd, &final, 4, StatsLayout.OffFlags);
                        }
                        result = Live; // its file stays for the exporter to fold in
                    }
                    else if (!ProcFs.IsAlive(pid) || ProcFs.StartTime(pid) != start)
                        result = Over;
                    else
                        result = Live;
                }
            }
            Libc.close(fd);
            return result;
        }

        /// <summary>Removes the files of processes that are over (no exporter will).</summary>
        private static void Sweep(int dirfd)
        {
            fixed (byte* buffer = s_scratch.Dirents)
            fixed (byte* name = s_scratch.Name)
            {
                int seen = 0;
                while (seen < MaxSweptEntries)
                {
                    long n = Libc.syscall(Libc.SYS_getdents64, (void*)(nint)dirfd, (long)buffer, DirentBytes, null, null, 0);
                    if (n <= 0) break;
                    // struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
                    for (long offset = 0; offset < n; )
                    {
                        byte* entry = buffer + offset;
                        ushort length = *(ushort*)(entry + 16);
                        byte* entryName = entry + 19;
                        seen++;
                        if (IsSegmentName(entryName) && !IsOwnName(entryName))
                        {
                            if (Inspect(dirfd, entryName, markOursFinal: false) == Over)
                                Libc.unlinkat(dirfd, entryName, 0);
                        }
                        offset += length;
                    }
                }
            }
        }

        private static bool IsSegmentName(byte* name)
        {
            int length = 0;
            while (name[length] != 0) length++;
            const string suffix = ".kstats";
            if (length <= suffix.Length) return false;
            fixed (char* s = suffix)
                for (int i = 0; i < suffix.Length; i++)
                    if (name[length - suffix.Length + i] != (byte)s[i]) return false;
            return name[0] >= (byte)'0' && name[0] <= (byte)'9';
        }

        private static bool IsOwnName(byte* name)
        {
            ulong pid = TextBuffer.ParseUnsigned(name, out _);
            return pid == (ulong)s_pid;
        }
    }
}
