// ThreadCaches, the held blocks: blocks above the bins' (1 056 bytes) and below 32 KiB that
// a thread frees are held back from the heap, a few of each size class, and the thread's
// next malloc of about that size takes one back: no search of the index, no carve, no
// merge on the way in, and memory the CPU's caches still hold. glibc's tcache does this
// for its chunks up to 1 KiB, and its unsorted bin (a malloc first looks at what was
// freed last) above.
//
// Why: a malloc/free pair through the heap costs about 1 000 instructions at these
// sizes, most of its time in loads of index nodes that miss the caches (the search
// descends ~15 levels, a carve's and a merge's climbs ~9 each, on the fragmentation
// mix), and first fit hands out the lowest hole that fits, wherever it is, so that
// the program's own first touches of a new block miss more than under glibc
// (docs/performance/fragmentation.md, "Fourth round").
//
// The classes sort blocks by size, eight a doubling: class c holds blocks of at least
// its size, (c % 8 + 8) << (3 + c / 8) units (64, 72, ... 120, 128, 144, ... 1 920), and
// less than the next class's; a block of 2 048 units (32 KiB) or more is not held. (The
// first class starts at 1 KiB, but its blocks of up to 1 040 bytes are the bins'.) The
// first eight classes, 1-2 KiB, were bins until issue 9's eighth round
// (ThreadCaches.BinCount says why they are not).
// Sizes are not rounded: a block keeps the exact size first fit gave it. A malloc
// looks only in its own size's class and takes the smallest held block there that
// fits, so the slack it may get (usable, as malloc_usable_size says) is below one
// class step, an eighth. Looking in the next class up too (every block there fits)
// served more requests, but with up to a quarter of slack: peak bytes in use on the
// fragmentation mix 45.0 -> 46.6 MiB, against 45.3 MiB this way; rounding every
// request up to its class's size (jemalloc's way) cost as much.
//
// A held block is Cached, as a bin's is: in use to the heap (never merged), a double
// free to free(). At most HeldPerClass blocks a class and HeldLimitUnits in all; a free
// that finds no room, or whose block would merge with a free neighbour (JoinsAHole),
// goes into the heap as before; a heap about to grow, a thread's exit, malloc_trim and a
// failed mapping give them all back (Arena.Placement.cs, ThreadCache.Drain.cs). The
// blocks are listed in the ThreadCache, addresses and sizes, not linked through freed
// memory: a search reads no block, no link the program could overwrite is followed, and
// each block's header is checked when it leaves the list.
//
// With the caches off (KONFISCATOR_TCACHE=0) nothing is held: every request is placed
// by exact first fit.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        public const int HeldClasses = 40;
        public const int HeldPerClass = 8;
        public const int HeldSlots = HeldClasses * HeldPerClass;
        /// <summary>A block of this many units or more is not held (32 KiB); the largest class,
        /// 30, holds blocks of 1 920 to 2 047 units.</summary>
        private const uint HeldUnitsLimit = 2048;
        /// <summary>The most a thread holds in all: a sixteenth of the process's bytes in use, at
        /// least 32 KiB and at most 1 MiB. A fixed 256 KiB took 13% off the fragmentation mix's
        /// time (45 MiB in use) but added 0.34 MiB to the peak RSS of the working set (0.5 MiB in
        /// use, 3.3 MiB of RSS); 64 KiB cost the working set 0.08 MiB and gained the mix nothing
        /// measurable (docs/performance/fragmentation.md, "Fourth round"). Up to 1 MiB and eight a
        /// class (256 KiB and four before) took the mix from 5 121 M to 4 947 M instructions and
        /// from 18.6 M to 15.9 M first-level read misses, for 0.7 MiB more peak RSS ("Fifth
        /// round"); a process with less than 4 MiB in use holds no more than before.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint HeldLimitUnits()
        {
            long units = StatsWriter.ReportedInUse() >> (Blocks.UnitShift + 4);
            return units < HeldMinUnits ? HeldMinUnits : units > HeldMaxUnits ? HeldMaxUnits : (uint)units;
        }

        private const uint HeldMinUnits = (32 << 10) >> Blocks.UnitShift;
        private const uint HeldMaxUnits = (1024 << 10) >> Blocks.UnitShift;

        /// <summary>The class of a block of <paramref name="units"/> (below HeldUnitsLimit):
        /// the one of the largest class size at most that; negative below the first class (64
        /// units). Within the doubling [64·2^e, 128·2^e) the classes step by 8·2^e units, so
        /// the block's size in steps, k, is 8..15: class e·8 + k - 8.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int ClassOf(uint units)
        {
            uint octave = units >> 6;                                   // 1..31 for 64..2 047 units
            int e = Bit(octave >= 2) + Bit(octave >= 4) + Bit(octave >= 8) + Bit(octave >= 16);
            return e * 8 + (int)(units >> (3 + e)) - 8;
        }

        /// <summary>The class a block of <paramref name="units"/> is held in, or -1 when no block
        /// of that size is held (the caches off, 32 KiB or more, below the first class).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int HeldClassOf(uint units) => !s_enabled || units >= HeldUnitsLimit ? -1 : ClassOf(units);

        /// <summary>1 for true, 0 for false, without a branch.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int Bit(bool b) => *(byte*)&b;

        /// <summary>Holds b, a plain used block of tc's home arena above the bins' sizes, which
        /// the caller checked and is freeing for a thread with its own stats slot, when b's
        /// class has room: true then, false when b goes into the heap.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Hold(ThreadCache* tc, Block* b)
        {
            uint units = b->SizeUnits;
            int c = HeldClassOf(units);
            if (c < 0) return false;
            uint n = tc->HeldCount[c];
            // The thread's own count first; the neighbour's header and the process-wide
            // figure the budget scales with are read only when the class has room.
            if (n == HeldPerClass || JoinsAHole(b, units) || tc->HeldUnits + units > HeldLimitUnits()) return false;
            Blocks.SetState(b, Blocks.Cached);
            int slot = c * HeldPerClass + (int)n;
            tc->Held[slot] = (ulong)b;
            tc->HeldSizes[slot] = (ushort)units;
            tc->HeldCount[c] = (byte)(n + 1);
            tc->HeldUnits += units;
            tc->Stats[StatsLayout.CachedBytes] += (ulong)units << Blocks.UnitShift;
            return true;
        }

        /// <summary>True when freeing b into the heap would merge it with a free neighbour: the
        /// block below (the free bit in b's own header) or, from 2 KiB up, the block above. Such
        /// a block is not held: held, it would keep a hole cut in two, and first fit, finding
        /// neither part big enough, would take fresh memory instead (the fragmentation mix's
        /// peak RSS: 54.7 MiB holding every block, 52.2 MiB with this test, for 1% more
        /// instructions). Below 2 KiB the block above is not looked at: python3 frees many
        /// such blocks next to free slivers, and sending them to the heap cost it 2.7% more
        /// instructions and saved no memory (docs/performance/memory.md, "Issue 9, ninth round").
        /// Both reads race with other threads' heap calls, harmlessly: while b is in use the
        /// header above it stays where it is (a block merges only into the one below it, and
        /// b is not free), and a stale answer only holds a block the other answer would have
        /// freed, or the other way round.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool JoinsAHole(Block* b, uint units) =>
            Blocks.PrevIsFree(b) || (units >= JoinAboveMinUnits && Blocks.Next(b)->State == Blocks.Free);

        /// <summary>2 KiB: JoinsAHole looks at the block above only from this size up.</summary>
        private const uint JoinAboveMinUnits = (2 << 10) >> Blocks.UnitShift;

        /// <summary>The smallest held block of at least <paramref name="units"/> (above the bins'
        /// sizes) in the class of that size, now Used and the caller's; null when it holds none
        /// that fits, or the caches are off. For a thread with its own stats slot.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* TakeHeld(ThreadCache* tc, uint units)
        {
            int c = HeldClassOf(units);
            if (c < 0) return null;
            int first = c * HeldPerClass;
            int end = first + tc->HeldCount[c];
            if (first == end) return null;
            return TakeHeldFrom(tc, units, first, end);
        }

        private static Block* TakeHeldFrom(ThreadCache* tc, uint units, int first, int end)
        {
            int slot = -1;
            uint best = HeldUnitsLimit;
            for (int i = first; i < end; i++)
            {
                uint u = tc->HeldSizes[i];
                if (u >= units && u < best) { best = u; slot = i; }
            }
            if (slot < 0) return null;
            Block* b = (Block*)tc->Held[slot];
            CheckHeld(b, best, tc->CurrentCall);
            // The class's last block fills the hole (the order within a class does not matter:
            // a search reads them all).
            int last = end - 1;
            tc->Held[slot] = tc->Held[last];
            tc->HeldSizes[slot] = tc->HeldSizes[last];
            tc->HeldCount[first / HeldPerClass] = (byte)(last - first);
            tc->HeldUnits -= best;
            Blocks.SetState(b, Blocks.Used);
            tc->Stats[StatsLayout.CachedBytes] -= (ulong)best << Blocks.UnitShift;
            return b;
        }

        /// <summary>Every held block into the heap (thread exit, a failed mapping).</summary>
        public static void ReleaseAllHeld(ThreadCache* tc)
        {
            if (tc->HeldUnits == 0) return;
            Arena* a = tc->Home;
            Heap.LockArena(a);
            ReleaseAllHeldLocked(tc, a);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
        }

        /// <summary>With home arena a's lock held, when a search found no fit there and a
        /// region is about to be mapped: the calling thread's held blocks go into the heap.
        /// True when any went back (a search is worth repeating).</summary>
        public static bool ReturnHeldLocked(Arena* a)
        {
            ThreadCache* tc = Heap.PeekCache();
            return tc != null && tc->Home == a && ReleaseAllHeldLocked(tc, a);
        }

        /// <summary>ReleaseAllHeld with the lock of a, tc's home, held (a heap about to grow).
        /// True when any went back.</summary>
        private static bool ReleaseAllHeldLocked(ThreadCache* tc, Arena* a)
        {
            if (tc->HeldUnits == 0) return false;
            ulong bytes = 0;
            long blocks = 0;
            for (int c = 0; c < HeldClasses; c++)
            {
                int first = c * HeldPerClass;
                int end = first + tc->HeldCount[c];
                for (int i = first; i < end; i++)
                {
                    Block* b = (Block*)tc->Held[i];
                    CheckHeld(b, tc->HeldSizes[i], tc->CurrentCall);
                    bytes += Blocks.Bytes(b);
                    blocks++;
                    Blocks.SetState(b, Blocks.Used);
                    Arenas.Release(a, b);
                }
                tc->HeldCount[c] = 0;
            }
            tc->HeldUnits = 0;
            Returned(tc, bytes, blocks);
            return true;
        }

        /// <summary>A held block's header must still say what it said when it was held: Cached,
        /// its size, no flags, sealed. Anything else is a write into freed memory.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void CheckHeld(Block* b, uint units, int call)
        {
            if (b->State != Blocks.Cached || b->SizeUnits != units || !Blocks.CheckOkUnsampled(b))
                FreeLinks.Corrupted(call, b);
        }
    }
}
