// KONFISCATOR_SHOW_STATS=1: a short summary of the process's figures on stderr when
// it exits, as MIMALLOC_SHOW_STATS does, with no tool running. Registered with
// __cxa_atexit only when asked for (a handler of a library that a program dlopens
// and closes again must not outlive it). Written with write(2) from a static
// buffer: no malloc, even this late.

using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Stats
{
    internal static unsafe class ExitSummary
    {
        private const int Capacity = 512;
        private struct LineBuffer { public fixed byte Bytes[Capacity]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static LineBuffer s_line;
#pragma warning restore CS0169

        [DllImport("libc")] private static extern int __cxa_atexit(delegate* unmanaged<void*, void> handler, void* argument, void* dso);
        [DllImport("libc")] private static extern int fcntl(int fd, int command, int argument);
        private const int F_DUPFD_CLOEXEC = 1030;

        /// <summary>A copy of stderr taken at start-up: programs may close fd 2 in their own exit
        /// handlers, which run before ours (coreutils' close_stdout does).</summary>
        private static int s_stderr = 2;

        /// <summary>At start-up: registers the summary when KONFISCATOR_SHOW_STATS is on (1, on, true, yes).</summary>
        public static void RegisterIfAsked()
        {
            if (!Settings.IsOn(StatsSchema.ShowStatsVariable, defaultValue: false)) return;
            int copy = fcntl(2, F_DUPFD_CLOEXEC, 100);
            if (copy >= 0) s_stderr = copy;
            __cxa_atexit(&Print, null, null);
        }

        [UnmanagedCallersOnly]
        private static void Print(void* unused)
        {
            fixed (byte* bytes = s_line.Bytes)
            {
                // konfiscator: pid 123 (python3): 1,234 malloc, 1,200 free, 3 calloc, 8 realloc, 0 failed
                var line = Start(bytes);
                line.Append("pid ");
                line.Append((ulong)Libc.getpid());
                line.Append(" (");
                ProcFs.CommandName(bytes + line.Length, 32);
                int length = line.Length;
                while (bytes[length] != 0) length++;
                line.Truncate(length);
                line.Append("): ");
                Count(ref line, StatsWriter.Read(StatsLayout.MallocCalls), " malloc, ");
                Count(ref line, StatsWriter.Read(StatsLayout.FreeCalls), " free, ");
                Count(ref line, StatsWriter.Read(StatsLayout.CallocCalls), " calloc, ");
                Count(ref line, StatsWriter.Read(StatsLayout.ReallocCalls), " realloc, ");
                Count(ref line, StatsWriter.Read(StatsLayout.FailedAllocations), " failed");
                Send(ref line);

                // konfiscator: allocated 12.3 MiB, in use 1.0 KiB at exit, peak 3.4 MiB, mapped 4.0 MiB (9 mmap, 2 munmap)
                line = Start(bytes);
                line.Append("allocated ");
                Bytes(ref line, StatsWriter.Read(StatsLayout.BytesAllocated));
                line.Append(", in use at exit ");
                ulong inUse = StatsWriter.Read(StatsLayout.BytesInUse);
                Bytes(ref line, inUse);
                line.Append(", peak ");
                // The peak is reported in quanta (StatsWriter.WouldRaisePeak), so it can lag what is
                // in use; a peak below the level is never true (the reader says the same).
                ulong peak = StatsWriter.Read(StatsLayout.PeakBytesInUse);
                Bytes(ref line, peak > inUse ? peak : inUse);
                line.Append(", mapped ");
                Bytes(ref line, StatsWriter.Read(StatsLayout.BytesMapped));
                line.Append(" (");
                Count(ref line, StatsWriter.Read(StatsLayout.MmapCalls), " mmap, ");
                Count(ref line, StatsWriter.Read(StatsLayout.MunmapCalls), " munmap)");
                Send(ref line);

                // konfiscator: free 1.1 MiB in 23 blocks, largest 900.0 KiB, 40 coalesces
                line = Start(bytes);
                line.Append("free ");
                Bytes(ref line, StatsWriter.Read(StatsLayout.FreeBytes));
                line.Append(" in ");
                Count(ref line, StatsWriter.Read(StatsLayout.FreeBlocks), " blocks, largest ");
                Bytes(ref line, StatsWriter.Read(StatsLayout.LargestFreeBlock));
                line.Append(", ");
                Count(ref line, StatsWriter.Read(StatsLayout.Coalesces), " coalesces");
                Send(ref line);
            }
        }

        private static TextBuffer Start(byte* bytes)
        {
            var line = new TextBuffer(bytes, Capacity);
            line.Append("konfiscator: ");
            return line;
        }

        private static void Send(ref TextBuffer line)
        {
            line.Append((byte)'\n');
            Libc.write(s_stderr, line.Pointer, (nuint)line.Length);
        }

        /// <summary>A count with thousands separators, then <paramref name="suffix"/>.</summary>
        private static void Count(ref TextBuffer line, ulong value, string suffix)
        {
            ulong scale = 1;
            while (value / scale >= 1000) scale *= 1000;
            line.Append(value / scale);
            for (scale /= 1000; scale > 0; scale /= 1000)
            {
                line.Append((byte)',');
                ulong group = value / scale % 1000;
                if (group < 100) line.Append((byte)'0');
                if (group < 10) line.Append((byte)'0');
                line.Append(group);
            }
            line.Append(suffix);
        }

        /// <summary>Bytes in the largest binary unit that keeps the figure at 1 or more, one decimal.</summary>
        private static void Bytes(ref TextBuffer line, ulong value)
        {
            if (value < 1024)
            {
                line.Append(value);
                line.Append(" B");
                return;
            }
            int unit = 0;
            ulong scale = 1024;
            while (unit < 4 && value / scale >= 1024) { scale *= 1024; unit++; }
            ulong tenths = (value * 10 + scale / 2) / scale;
            if (value > 0x0FFFFFFFFFFFFFFFUL) tenths = value / scale * 10; // no overflow near the top
            line.Append(tenths / 10);
            line.Append((byte)'.');
            line.Append(tenths % 10);
            line.Append(unit switch { 0 => " KiB", 1 => " MiB", 2 => " GiB", 3 => " TiB", _ => " PiB" });
        }
    }
}
