// ThreadCaches, idle bins: a bin whose blocks the thread does not need gives half of
// them back to the heap at each look.
//
// Why: a bin grows while the program frees and allocates its size in batches (up to
// 2 MiB, Refill), and it used to keep whatever it held once the program moved on to
// other sizes. The fragmentation mix's phases of 16-256 bytes left bins full through
// the phases of 1-16 KiB that followed, where the heap needed the space: cached bytes
// reached 1.1 MiB (4.4 MiB in a run three times as long), all of it resident, none
// of it asked for. A bin in use can also hold more than it is ever asked for: the
// leftovers of refills in a working set that takes and gives back a few blocks of a
// size at a time.
//
// How: every LookEvery slow paths of a thread (a malloc above the bins, a refill, an
// overflow: calls that take the arena's lock anyway), the thread looks at each of its
// bins. A bin that did not run empty since the last look (no refill: RanEmpty) had
// blocks at the bottom that nothing took in all that time; it gives half its blocks
// back (Drain: sorted, joined, coalesced) and its capacity halves, down to what it
// started with. An idle bin holds 1/2^k of what it held after k looks; one that keeps
// running empty keeps what it has. This is jemalloc's tcache "GC" with a yes/no low-water
// mark: a bin's lowest count between looks would need a store on every fast-path malloc,
// where whether it reached zero is known on the slow path, at the refill.
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
        /// the thread looks at its bins.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void CountSlowPath(ThreadCache* tc)
        {
            if (--tc->LookCountdown == 0) LookAtBins(tc);
        }

        /// <summary>The look (also a debug export, for tests): each bin that did not run empty
        /// since the last one gives half its blocks back. Returns the bytes given back.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static long LookAtBins(ThreadCache* tc)
        {
            tc->LookCountdown = LookEvery;
            long given = 0;
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                if (bin->Count != 0 && bin->RanEmpty == 0)
                {
                    uint before = bin->Count;
                    Drain(tc, bin, (before + 1) / 2);
                    given += (long)(before - bin->Count) * ((long)units << Blocks.UnitShift);
                    // RefillMax is the capacity the bin started with (ThreadCaches.Create).
                    uint half = (uint)bin->Capacity / 2;
                    if (half >= bin->RefillMax) bin->Capacity = (ushort)half;
                    else if (bin->Capacity > bin->RefillMax) bin->Capacity = bin->RefillMax;
                }
                bin->RanEmpty = 0;
            }
            return given;
        }
    }
}
