// Atomic operations. Marked [Intrinsic], ILC replaces the bodies with
// `lock cmpxchg` / `xchg` / `lock xadd`; the bodies below are never compiled in.

using System.Runtime.CompilerServices;

namespace System.Threading
{
    public static class Interlocked
    {
        [Intrinsic]
        public static int CompareExchange(ref int location1, int value, int comparand)
            => CompareExchange(ref location1, value, comparand);

        [Intrinsic]
        public static long CompareExchange(ref long location1, long value, long comparand)
            => CompareExchange(ref location1, value, comparand);

        [Intrinsic]
        public static int Exchange(ref int location1, int value)
            => Exchange(ref location1, value);

        [Intrinsic]
        public static long Exchange(ref long location1, long value)
            => Exchange(ref location1, value);

        [Intrinsic]
        public static int ExchangeAdd(ref int location1, int value)
            => ExchangeAdd(ref location1, value);

        [Intrinsic]
        public static long ExchangeAdd(ref long location1, long value)
            => ExchangeAdd(ref location1, value);
    }
}

namespace System.Numerics
{
    public static class BitOperations
    {
        /// <summary>floor(log2(value)), 0 for 0 and 1: the exponent of the value as a
        /// double (one conversion, no branches). Exact up to 2^54; above, rounding may
        /// add one, which no caller here can tell apart (the histogram caps at 2^32).</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static unsafe int Log2(ulong value)
        {
            // Halved so that it converts as a positive long; log2(v) = log2(v/2) + 1.
            double d = (long)(value >> 1);
            long bits = *(long*)&d;
            int log = (int)((bits >> 52) & 0x7FF) - 1023 + 1;
            return value <= 1 ? 0 : log;
        }
    }
}
