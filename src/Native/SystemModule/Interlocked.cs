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
        /// <summary>floor(log2(value)), 0 for 0. [Intrinsic]: the JIT emits lzcnt/bsr;
        /// the body is a correct fallback should it not.</summary>
        [System.Runtime.CompilerServices.Intrinsic]
        public static int Log2(ulong value)
        {
            int n = 0;
            if (value >= 1UL << 32) { n += 32; value >>= 32; }
            if (value >= 1UL << 16) { n += 16; value >>= 16; }
            if (value >= 1UL << 8) { n += 8; value >>= 8; }
            if (value >= 1UL << 4) { n += 4; value >>= 4; }
            if (value >= 1UL << 2) { n += 2; value >>= 2; }
            if (value >= 1UL << 1) { n += 1; }
            return n;
        }
    }
}
