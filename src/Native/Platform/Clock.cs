// Cheap time for housekeeping decisions (purging), from the vDSO: no system call.

using System.Runtime.InteropServices;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Clock
    {
        private const int CLOCK_MONOTONIC = 1, CLOCK_MONOTONIC_COARSE = 6;

        [StructLayout(LayoutKind.Sequential)]
        private struct TimeSpec { public long Seconds; public long Nanoseconds; }

        [DllImport("libc")] private static extern int clock_gettime(int clock, TimeSpec* time);

        private const int CLOCK_REALTIME = 0;

        /// <summary>Wall-clock time in nanoseconds since the epoch (vDSO), for sample times.</summary>
        public static ulong RealtimeNanoseconds()
        {
            TimeSpec t;
            clock_gettime(CLOCK_REALTIME, &t);
            return (ulong)t.Seconds * 1000000000UL + (ulong)t.Nanoseconds;
        }

        /// <summary>Monotonic time in microseconds (vDSO, exact), for timing a piece of work
        /// shorter than the coarse clock's tick (4 ms at HZ=250).</summary>
        public static long MonotonicMicroseconds()
        {
            TimeSpec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            return t.Seconds * 1000000 + t.Nanoseconds / 1000;
        }

        public static long CoarseMilliseconds()
        {
            TimeSpec t;
            clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
            return t.Seconds * 1000 + t.Nanoseconds / 1000000;
        }
    }
}
