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
        /// <summary>Bytes in use are added to the process-wide figure (for the peak)
        /// once a thread's unreported change reaches this much.</summary>
        private const long InUseReportStep = 16 << 10;

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
                AllocatedInSlot(tc, callCounter, requested, usable, StatsLayout.HistogramBucket(requested), 0);
            else
                AllocatedShared(callCounter, requested, usable);
        }

        /// <summary>Allocated, for a block from a thread-cache bin, whose histogram bucket
        /// is known unless the bin says 0xFF.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void AllocatedFromBin(ThreadCache* tc, Bin* bin, int callCounter, nuint requested, nuint usable)
        {
            if (tc->StatsSlot >= 0)
                AllocatedInSlot(tc, callCounter, requested, usable,
                                bin->Bucket != 0xFF ? bin->Bucket : SmallestBinBucket(requested), usable + Blocks.HeaderBytes);
            else
                AllocatedSharedFromCache(callCounter, requested, usable);
        }

        /// <summary>StatsLayout.HistogramBucket for the smallest bin's requests (0..16 bytes),
        /// from a table packed 3 bits a size into one constant: 0, 0, 1, 2, 2, 3, 3, 3, 3,
        /// then 4 up to 16.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int SmallestBinBucket(nuint requested) => (int)((SmallBuckets >> (int)(3 * requested)) & 7);

        private const ulong SmallBuckets =
            (0UL << 0) | (0UL << 3) | (1UL << 6) | (2UL << 9) | (2UL << 12) | (3UL << 15) | (3UL << 18) | (3UL << 21) | (3UL << 24) |
            (4UL << 27) | (4UL << 30) | (4UL << 33) | (4UL << 36) | (4UL << 39) | (4UL << 42) | (4UL << 45) | (4UL << 48);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void AllocatedInSlot(ThreadCache* tc, int callCounter, nuint requested, nuint usable, int bucket,
                                            nuint fromCache)
        {
            ulong* s = tc->Stats;
            s[callCounter]++;
            s[StatsLayout.CachedBytes] -= fromCache;
            s[StatsLayout.BytesAllocated] += usable;
            s[StatsLayout.BytesInUse] += usable;
            s[StatsLayout.RequestSizeSum] += requested;
            s[StatsLayout.HistogramFirst + bucket]++;
            tc->InUseDelta += (long)usable;
            // Reported in steps of 16 KiB, or sooner when it would set a new peak
            // (see WouldRaisePeak for how much sooner).
            long delta = tc->InUseDelta;
            if (delta >= StatsWriter.PeakQuantumFloor &&
                (delta >= InUseReportStep || StatsWriter.WouldRaisePeak(delta)))
                ThreadCaches.FlushInUse(tc);
        }

        /// <summary>Freed, for a block the free parked in the thread's cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void FreedToCache(ThreadCache* tc, int callCounter, nuint usable)
        {
            if (tc->StatsSlot >= 0)
            {
                ulong* s = tc->Stats;
                s[callCounter]++;
                s[StatsLayout.BytesFreed] += usable;
                s[StatsLayout.BytesInUse] -= usable;
                s[StatsLayout.CachedBytes] += usable + Blocks.HeaderBytes;
                tc->InUseDelta -= (long)usable;
                if (tc->InUseDelta <= -InUseReportStep) ThreadCaches.FlushInUse(tc);
            }
            else
            {
                FreedShared(callCounter, usable);
                Atomics.Add(&StatsWriter.SharedSlot[StatsLayout.CachedBytes], (long)(usable + Blocks.HeaderBytes));
            }
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
                if (tc->InUseDelta <= -InUseReportStep) ThreadCaches.FlushInUse(tc);
            }
            else
            {
                FreedShared(callCounter, usable);
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void AllocatedSharedFromCache(int callCounter, nuint requested, nuint usable)
        {
            AllocatedShared(callCounter, requested, usable);
            Atomics.Add(&StatsWriter.SharedSlot[StatsLayout.CachedBytes], -(long)(usable + Blocks.HeaderBytes));
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
