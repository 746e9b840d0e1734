// ThreadCaches, idle bins: a bin the thread has stopped using gives its blocks back
// to the heap, half at each look.
//
// Why: a bin grows while the program frees and allocates its size in batches (up to
// 2 MiB, Refill), and it used to keep whatever it held once the program moved on to
// other sizes. The fragmentation mix's phases of 16-256 bytes left bins full through
// the phases of 1-16 KiB that followed, where the heap needed the space: cached bytes
// reached 1.1 MiB (4.4 MiB in a run three times as long), all of it resident, none
// of it asked for.
//
// How: every LookEvery slow paths of a thread (a malloc above the bins, a refill, an
// overflow: calls that take the arena's lock anyway), the thread looks at each of its
// bins. A bin whose head is the one it had at the last look was neither taken from nor
// added to in between (a pop or a push changes the head); it gives half its blocks
// back (Drain: sorted, joined, coalesced) and its capacity halves, down to what it
// started with. A bin idle for k looks holds 1/2^k of what it held; one in use is left
// alone. Nothing on the fast paths changes: the look reads each bin's head, off them.
// jemalloc's tcache "GC" does the same from its low-water marks, which would need a
// store on every fast-path malloc here.
//
// A thread that makes no slow calls (all its sizes served by its bins) never looks:
// its bins are in use.

using System.Runtime.CompilerServices;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        /// <summary>Slow paths between two looks at a thread's bins.</summary>
        public const uint LookEvery = 8192;

        /// <summary>A slow path of the thread (no arena lock held): every LookEvery of them,
        /// its idle bins give half their blocks back.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void CountSlowPath(ThreadCache* tc)
        {
            if (--tc->LookCountdown == 0) GiveBackIdle(tc);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void GiveBackIdle(ThreadCache* tc)
        {
            tc->LookCountdown = LookEvery;
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                if (bin->Count != 0 && HeadWord(bin) == bin->HeadAtLook)
                {
                    Drain(tc, bin, (bin->Count + 1) / 2);
                    // RefillMax is the capacity the bin started with (ThreadCaches.Create).
                    uint half = (uint)bin->Capacity / 2;
                    if (half >= bin->RefillMax) bin->Capacity = (ushort)half;
                    else if (bin->Capacity > bin->RefillMax) bin->Capacity = bin->RefillMax;
                }
                bin->HeadAtLook = HeadWord(bin);
            }
        }

        /// <summary>The low half of a bin's head, enough to tell that it changed.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint HeadWord(Bin* bin) => (uint)(nuint)bin->Head;
    }
}
