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
