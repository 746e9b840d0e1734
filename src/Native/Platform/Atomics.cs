// Small atomic helpers over raw pointers. Reads through a `volatile` field so the
// compiler can neither cache nor reorder them (x86 gives the hardware ordering).

using System.Runtime.CompilerServices;
using System.Threading;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Atomics
    {
        private struct VolatileInt { public volatile int Value; }
        // C# allows no volatile 64-bit fields; a volatile native-sized integer is the same on x64.
        private struct VolatileLong { public volatile nuint Value; }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Read(int* p) => ((VolatileInt*)p)->Value;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Read(ulong* p) => ((VolatileLong*)p)->Value;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Write(ulong* p, ulong value) => ((VolatileLong*)p)->Value = (nuint)value;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Write(int* p, int value) => ((VolatileInt*)p)->Value = value;

        public static void Or(ulong* p, ulong bits)
        {
            long old;
            do { old = (long)Read(p); }
            while (Interlocked.CompareExchange(ref *(long*)p, old | (long)bits, old) != old);
        }

        public static void And(ulong* p, ulong bits)
        {
            long old;
            do { old = (long)Read(p); }
            while (Interlocked.CompareExchange(ref *(long*)p, old & (long)bits, old) != old);
        }

        public static long Add(ulong* p, long delta) => Interlocked.ExchangeAdd(ref *(long*)p, delta) + delta;

        /// <summary>Raises *p to at least <paramref name="value"/>.</summary>
        public static void Max(ulong* p, ulong value)
        {
            ulong old = Read(p);
            while (old < value)
            {
                long seen = Interlocked.CompareExchange(ref *(long*)p, (long)value, (long)old);
                if ((ulong)seen == old) return;
                old = (ulong)seen;
            }
        }

        /// <summary>Lowers *p to at most <paramref name="value"/>.</summary>
        public static void Min(ulong* p, ulong value)
        {
            ulong old = Read(p);
            while (old > value)
            {
                long seen = Interlocked.CompareExchange(ref *(long*)p, (long)value, (long)old);
                if ((ulong)seen == old) return;
                old = (ulong)seen;
            }
        }
    }
}
