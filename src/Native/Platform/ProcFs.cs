// What the kernel says about a process, read from /proc without malloc.

namespace Konfiscator.Native.Platform
{
    internal static unsafe class ProcFs
    {
        private const int StatBytes = 1024;
        private struct Scratch { public fixed byte Path[64]; public fixed byte Text[StatBytes]; }
        // Only used during initialization and fork handling, both serialized.
        #pragma warning disable CS0169 // only ever used through `fixed`, which the compiler does not count
        private static Scratch s_scratch;
#pragma warning restore CS0169

        private struct CpuMask { public fixed ulong Words[16]; }   // 1 024 CPUs
#pragma warning disable CS0169 // only ever used through `fixed`
        private static CpuMask s_cpuMask;
#pragma warning restore CS0169

        /// <summary>How many CPUs this process may run on (sched_getaffinity), 0 if unknown.
        /// Not sysconf(_SC_NPROCESSORS_ONLN): glibc's reads /sys/devices/system/cpu/online and
        /// parses it with strtoul, which took two or three more 64 KiB stretches of libc into every
        /// process's resident pages (the kernel maps a file's pages 16 at a time around a
        /// fault): about 0.1 MiB of RSS for one call at start-up. An affinity mask is also the
        /// better count where a process is confined to some CPUs (taskset, a container's cpuset).</summary>
        public static int UsableCpus()
        {
            fixed (ulong* mask = s_cpuMask.Words)
            {
                long bytes = Libc.syscall(Libc.SYS_sched_getaffinity, null, 16 * sizeof(ulong), (long)mask, null, null, 0);
                if (bytes <= 0) return 0;
                int cpus = 0;
                for (int i = 0; i < bytes / sizeof(ulong); i++)
                    for (ulong w = mask[i]; w != 0; w &= w - 1) cpus++;
                return cpus;
            }
        }

        /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks after boot), 0 if unknown.</summary>
        public static ulong StartTime(int pid)
        {
            fixed (byte* path = s_scratch.Path)
            fixed (byte* text = s_scratch.Text)
            {
                var p = new TextBuffer(path, 64);
                p.Append("/proc/");
                if (pid == 0) p.Append("self"); else p.Append((ulong)pid);
                p.Append("/stat");
                int n = ReadFile(path, text, StatBytes - 1);
                if (n <= 0) return 0;
                text[n] = 0;
                // The command name (field 2) is in parentheses and may contain spaces
                // or ')', so count fields from the last ')'.
                int close = -1;
                for (int i = 0; i < n; i++) if (text[i] == (byte)')') close = i;
                if (close < 0) return 0;
                int field = 2;
                for (int i = close + 1; i < n; i++)
                {
                    if (text[i] != (byte)' ') continue;
                    field++;
                    if (field == 22) return TextBuffer.ParseUnsigned(text + i + 1, out _);
                }
                return 0;
            }
        }

        /// <summary>Copies /proc/self/comm (without the newline) into <paramref name="destination"/>.</summary>
        public static void CommandName(byte* destination, int capacity)
        {
            fixed (byte* path = s_scratch.Path)
            fixed (byte* text = s_scratch.Text)
            {
                var p = new TextBuffer(path, 64);
                p.Append("/proc/self/comm");
                int n = ReadFile(path, text, 255);
                int length = 0;
                for (int i = 0; i < n && text[i] != (byte)'\n' && length < capacity - 1; i++)
                    destination[length++] = text[i];
                for (int i = length; i < capacity; i++) destination[i] = 0;
            }
        }

        public static bool IsAlive(int pid)
        {
            if (pid <= 0) return false;
            if (Libc.kill(pid, 0) == 0) return true;
            return *Libc.__errno_location() == 1; // EPERM: it exists, it is just not ours
        }

        public static int ReadFile(byte* path, byte* buffer, int capacity)
        {
            int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            if (fd < 0) return -1;
            int total = 0;
            while (total < capacity)
            {
                nint got = Libc.read(fd, buffer + total, (nuint)(capacity - total));
                if (got <= 0) break;
                total += (int)got;
            }
            Libc.close(fd);
            return total;
        }
    }
}
