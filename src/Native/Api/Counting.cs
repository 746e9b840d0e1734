// What each call adds to the stats. Calls and bytes are counted in the calling
// thread's own slot with plain stores (no lock, no atomic: only this thread
// writes it). Threads without a slot of their own share one with atomic adds.
// "Bytes" are usable bytes (what malloc_usable_size reports), so allocated −
// freed = in use, exactly; the histogram counts requested sizes.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Counting
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Call(ThreadCache* tc, int counter)
        {
            if (tc != null && tc->StatsSlot >= 0) tc->Stats[counter]++;
            else Atomics.Add(&StatsWriter.SharedSlot[counter], 1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Allocated(ThreadCache* tc, int callCounter, nuint requested, nuint usable)
        {
            if (tc != null && tc->StatsSlot >= 0)
                AllocatedInSlot(tc, callCounter, requested, usable, StatsLayout.HistogramBucket(requested));
            else
                AllocatedShared(callCounter, requested, usable);
        }

        /// <summary>Usable bytes of bin 0's blocks; bin k's are 16k more.</summary>
        private const nuint BinUsableBase = (ThreadCaches.MinUnits << Blocks.UnitShift) - Blocks.Overhead;

        /// <summary>The malloc fast path's counting, for a block from bin <paramref name="index"/>
        /// of a thread with a slot of its own. True when the thread's unreported growth of
        /// bytes in use is large enough to look at (ReportGrowth).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool AllocatedFromBin(ThreadCache* tc, nuint index, nuint requested, nuint cls)
        {
            // The call, its bytes, the cached bytes and its histogram bucket all follow
            // from one count (StatsLayout.FromFastCounts): the request size's, one by one up
            // to 16 bytes, then by 8-byte class.
            ulong* s = tc->Stats;
            s[StatsLayout.FastMallocCounter(requested, cls)]++;
            s[StatsLayout.RequestSizeSum] += requested;
            long delta = tc->InUseDelta + (long)((index << Blocks.UnitShift) + BinUsableBase);
            tc->InUseDelta = delta;
            return delta >= tc->GrowthLimit;
        }

        /// <summary>Reports a thread's growth of bytes in use to the process-wide figure
        /// in steps of StatsWriter.InUseReportStep(), or sooner when it would set a new peak
        /// (see WouldRaisePeak for how much sooner); called once it reached the thread's GrowthLimit.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ReportGrowth(ThreadCache* tc)
        {
            long delta = tc->InUseDelta;
            if (delta >= StatsWriter.InUseReportStep() || StatsWriter.WouldRaisePeak(delta)) ThreadCaches.FlushInUse(tc);
            else tc->GrowthLimit = StatsWriter.GrowthToLookAt();   // other threads moved the peak
        }

        /// <summary>The free fast path's counting, for a block parked in bin
        /// <paramref name="index"/> of a thread with a slot of its own. True when the
        /// thread's unreported shrinking of bytes in use is due for a report (ReportShrink).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool FreedToBin(ThreadCache* tc, nuint index)
        {
            tc->Stats[StatsLayout.BinFreesFirst + index]++;   // the rest follows (StatsLayout.FromFastCounts)
            long delta = tc->InUseDelta - (long)((index << Blocks.UnitShift) + BinUsableBase);
            tc->InUseDelta = delta;
            return delta <= tc->ShrinkLimit;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ReportShrink(ThreadCache* tc) => ThreadCaches.FlushInUse(tc);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void AllocatedInSlot(ThreadCache* tc, int callCounter, nuint requested, nuint usable, int bucket)
        {
            ulong* s = tc->Stats;
            s[callCounter]++;
            s[StatsLayout.BytesAllocated] += usable;
            s[StatsLayout.BytesInUse] += usable;
            s[StatsLayout.RequestSizeSum] += requested;
            s[StatsLayout.HistogramFirst + bucket]++;
            if ((tc->InUseDelta += (long)usable) >= tc->GrowthLimit) ReportGrowth(tc);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Freed(ThreadCache* tc, int callCounter, nuint usable)
        {
            if (tc != null && tc->StatsSlot >= 0)
            {
                ulong* s = tc->Stats;
                if (callCounter >= 0) s[callCounter]++;
                s[StatsLayout.BytesFreed] += usable;
                s[StatsLayout.BytesInUse] -= usable;
                tc->InUseDelta -= (long)usable;
                if (tc->InUseDelta <= tc->ShrinkLimit) ThreadCaches.FlushInUse(tc);
            }
            else
            {
                FreedShared(callCounter, usable);
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void AllocatedShared(int callCounter, nuint requested, nuint usable)
        {
            ulong* s = StatsWriter.SharedSlot;
            Atomics.Add(&s[callCounter], 1);
            Atomics.Add(&s[StatsLayout.BytesAllocated], (long)usable);
            Atomics.Add(&s[StatsLayout.BytesInUse], (long)usable);
            Atomics.Add(&s[StatsLayout.RequestSizeSum], (long)requested);
            Atomics.Add(&s[StatsLayout.HistogramFirst + StatsLayout.HistogramBucket(requested)], 1);
            StatsWriter.AddInUse((long)usable);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void FreedShared(int callCounter, nuint usable)
        {
            ulong* s = StatsWriter.SharedSlot;
            if (callCounter >= 0) Atomics.Add(&s[callCounter], 1);
            Atomics.Add(&s[StatsLayout.BytesFreed], (long)usable);
            Atomics.Add(&s[StatsLayout.BytesInUse], -(long)usable);
            StatsWriter.AddInUse(-(long)usable);
        }
    }
}
