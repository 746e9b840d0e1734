// What each call adds to its arena's slot (under the arena's lock).
// "Bytes" are usable bytes (what malloc_usable_size reports), so that
// allocated − freed = in use, exactly; the histogram counts requested sizes.

using System.Runtime.CompilerServices;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Counting
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Allocated(ulong* s, nuint requested, nuint usable)
        {
            s[StatsLayout.BytesAllocated] += usable;
            s[StatsLayout.BytesInUse] += usable;
            s[StatsLayout.RequestSizeSum] += requested;
            s[StatsLayout.HistogramFirst + StatsLayout.HistogramBucket(requested)]++;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Freed(ulong* s, nuint usable)
        {
            s[StatsLayout.BytesFreed] += usable;
            s[StatsLayout.BytesInUse] -= usable;
        }
    }
}
