// Aligned requests of cached sizes served from the thread's cache (issue 8, case 6;
// issue 9), the way tcmalloc and mimalloc serve them from their size classes: no search
// of the free index in the steady state, where the heap's rule (docs/heap.md, "Aligned
// requests") costs two descents of a tree of every free block, with a cache miss at
// nearly every step once there are thousands of them.
//
// With the caches on, memalign & co. for a block of a cached size (and A > 16) try,
// in this order:
//   1. the top SameSizeProbes blocks of the bin of the block's own size, and the top
//      block of the bin one unit larger (taken whole: 16 bytes more), for one whose
//      payload is already A-aligned (about one block in A/16 is, by chance). No slack;
//   2. for A up to RunAlignmentMax, the size rounded up to whole alignments: the top
//      RunProbes blocks of that size's bin, else an aligned refill of that bin (a run of
//      blocks of the rounded size carved as one aligned block of the heap: each block of
//      it is a whole number of alignments long, so each payload is aligned). A block of
//      the rounded size freed later goes back to that bin by its size and is found on
//      top by the next request of the size and alignment. No gaps are cut: the slack
//      (less than A) stays inside the block, where free() gets it back with the block.
// Anything else (A above RunAlignmentMax, a rounded size above the bins') goes to the
// heap, placed by its rule, after step 1 with HeapBoundProbes.
//
// Before runs, step 2 cut the aligned block out of a block of the padded size (the size
// + A + 16 bytes) from a bin, parking the gaps before and after it in their bins: a
// refill, a cut and a drain for most requests, and thousands of gaps of up to A bytes
// left free in the heap (docs/performance/memory.md, "Aligned").
//
// A cache is not a policy: with KONFISCATOR_TCACHE=0 none of this runs and every
// aligned request is placed exactly as docs/heap.md says. The protections of the
// bins hold here too: every link followed is read through FreeLinks (checked), and
// every block taken must say Cached and have its bin's size. A run's headers are
// written under the lock of its arena, as they are everywhere else, so a walk of the
// arena (the heap map, the heap check) never sees a run half made. A probe that hits
// changes no header and takes no lock.

using System.Runtime.CompilerServices;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class AlignedCache
    {
        /// <summary>Requests aligned up to this (and of a size that rounds to a cached one) are
        /// served from blocks of their size rounded up to whole alignments: at most 1 008 bytes
        /// more than asked for, the gap glibc's memalign leaves below such a block too.</summary>
        public const nuint RunAlignmentMax = 1024;

        /// <summary>How many blocks on top of the rounded size's bin are looked at for an
        /// aligned one before an aligned refill. The bin also serves plain requests of its
        /// size, whose blocks may lie anywhere; an aligned block freed lately is near the top.</summary>
        public const int RunProbes = 8;

        /// <summary>How many blocks of the request's own bin are looked at for one whose
        /// payload is aligned already (step 1). Each costs a checked link read; deeper ones
        /// seldom pay: blocks that did not fit stay on top until newer frees cover them.</summary>
        public const int SameSizeProbes = 2;

        /// <summary>The same for a request the heap will place (above RunAlignmentMax, or a
        /// rounded size above the bins'). There an aligned block leaves a gap below it of up to
        /// A bytes that only a refill of a bin reuses; a block freed by an earlier request of
        /// the size and alignment is the one to reuse, and eight probes found one three times
        /// in four when a sixth of a bin's blocks were aligned (docs/performance/memory.md).</summary>
        public const int HeapBoundProbes = 8;

        /// <summary>An <paramref name="alignment"/>-aligned used block of at least <paramref name="units"/>
        /// (at most ThreadCaches.MaxUnits; alignment a power of two above 16) from the
        /// thread's bins; null when the request is for the heap.</summary>
        public static Block* Take(ThreadCache* tc, uint units, nuint alignment)
        {
            int call = tc->CurrentCall;
            // A block a whole number of alignments long: in a run of such blocks every
            // payload is aligned when the first is.
            uint step = (uint)(alignment >> Blocks.UnitShift);
            uint rounded = (units + step - 1) & ~(step - 1);
            bool run = alignment <= RunAlignmentMax && rounded <= ThreadCaches.MaxUnits;

            // 1. A block of the size, or a unit larger, that happens to be aligned: no slack.
            // (When one of them is the rounded size, step 2 looks at its bin.)
            Block* b = null;
            if (!run || rounded != units)
                b = TakeAlignedFromBin(ThreadCaches.BinFor(tc, units), units, alignment, call, run ? SameSizeProbes : HeapBoundProbes);
            if (b == null && units < ThreadCaches.MaxUnits && (!run || rounded != units + 1))
                b = TakeAlignedFromBin(ThreadCaches.BinFor(tc, units + 1), units + 1, alignment, call, 1);
            if (b != null)
            {
                Uncached(tc, b->SizeUnits);
                return b;
            }
            if (!run) return null;

            // 2. An aligned block of the rounded size from its bin, else from an aligned run
            // carved for it (ThreadCaches.RefillAligned), whose other blocks go to that bin.
            Bin* bin = ThreadCaches.BinFor(tc, rounded);
            b = TakeAlignedFromBin(bin, rounded, alignment, call, RunProbes);
            if (b == null) return ThreadCaches.RefillAligned(tc, bin, rounded, alignment);
            Uncached(tc, rounded);
            return b;
        }

        /// <summary>Unlinks and returns the first of the bin's top <paramref name="probes"/>
        /// blocks (of <paramref name="units"/>) whose payload is aligned (state Used), or null.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Block* TakeAlignedFromBin(Bin* bin, uint units, nuint alignment, int call, int probes)
        {
            Block* prev = null;
            Block* b = bin->Head;
            // A block's address says whether it fits: a link is read only to take the block
            // or to look at the next one, so a miss on the top block alone reads nothing.
            for (int i = 1; b != null; i++)
            {
                if (((nuint)Blocks.Payload(b) & (alignment - 1)) == 0)
                {
                    FreeLinks.CheckCached(b, call);
                    if (b->SizeUnits != units) FreeLinks.Corrupted(call, b);
                    Block* next = FreeLinks.Next(b, call);
                    if (prev == null) bin->Head = next;
                    else FreeLinks.SetNext(prev, next);
                    bin->Count--;
                    Blocks.SetState(b, Blocks.Used);
                    return b;
                }
                if (i == probes) break;
                FreeLinks.CheckCached(b, call);
                prev = b;
                b = FreeLinks.Next(b, call);
            }
            return null;
        }

        /// <summary>Counts a block of <paramref name="units"/> taken out of a bin.</summary>
        private static void Uncached(ThreadCache* tc, uint units) =>
            ThreadCaches.Count(tc, StatsLayout.CachedBytes, -((long)units << Blocks.UnitShift));
    }
}
