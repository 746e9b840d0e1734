// ThreadCaches, refilling: an empty bin is served from the blocks other threads
// freed back to the home arena, else from the heap by first fit, carving a run of
// blocks at once (growing with the bin's use: "slow start"). Apart from draining
// because it is the other direction, with its own sizing rules.

using System.Runtime.CompilerServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        /// <summary>Serves a request of <paramref name="units"/> for an empty bin. First from
        /// blocks other threads freed back to the home arena (adopted into this cache's
        /// bins while they have room), else from the heap: the bin is filled with up to
        /// half its refill budget more (fewer on its first refills), all carved by first fit
        /// from one free block. Returns
        /// the caller's block (Used), or null when the heap has no memory.</summary>
        public static Block* Refill(ThreadCache* tc, Bin* bin, uint units)
        {
            CountSlowPath(tc);
            bin->RanEmpty = 1;
            Arena* a = tc->Home;
            Block* spill = Atomics.Read((ulong*)&a->Remote) != 0 ? AdoptRemote(tc, a) : null;
            Block* mine = Pop(bin, units, tc->CurrentCall);
            if (mine != null) Count(tc, StatsLayout.CachedBytes, -(long)Blocks.Bytes(mine));
            if (mine != null && spill == null) return mine;

            Heap.LockArena(a);
            Arenas.ReleaseChain(a, spill);
            if (mine != null)
            {
                SeeSpan(tc, a);
                Arenas.PublishLargest(a);
                Heap.UnlockArena(a);
                return mine;
            }
            uint want = BatchSize(tc, bin, units, aligned: false);
            Block* b = Arenas.FindFit(a, units);
            if (b == null)
            {
                Heap.UnlockArena(a);
                return null;
            }
            // The lowest fitting block stays the lowest fitting block while it is cut
            // from the bottom, so carving several blocks from it at once gives exactly
            // the addresses that as many first-fit requests would.
            uint fits = b->SizeUnits / units;
            uint count = fits < want ? fits : want;
            // A rest of one unit cannot be a block; leave a bigger rest instead.
            if (count > 1 && b->SizeUnits - count * units == 1) count--;
            Block* top = Arenas.TakeRun(a, b, units, count);
            SeeSpan(tc, a);         // the search may have mapped a region: the readable range grew
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
            LinkRefill(tc, bin, top, units, count);
            return top;
        }

        /// <summary>Refills bin <paramref name="units"/> (a multiple of alignment/16) for an
        /// aligned request (Heap/AlignedCache.cs): the heap places the batch as one block
        /// whose payload is <paramref name="alignment"/>-aligned (Arenas.TakeAlignedRun), and
        /// since each block of the run is a whole number of alignments long, every payload in
        /// it is aligned. Returns the first block (Used) for the caller; the others go on
        /// top of the bin, where the next aligned requests of the size find them. Null when
        /// the heap has no memory.</summary>
        public static Block* RefillAligned(ThreadCache* tc, Bin* bin, uint units, nuint alignment)
        {
            CountSlowPath(tc);
            bin->RanEmpty = 1;
            uint count = BatchSize(tc, bin, units, aligned: true);
            Arena* a = tc->Home;
            Heap.LockArena(a);
            Block* top = Arenas.TakeAlignedRun(a, units, ref count, alignment);
            SeeSpan(tc, a);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
            if (top != null) LinkRefill(tc, bin, top, units, count);
            return top;
        }

        /// <summary>How many blocks a refill of the bin carves now, growing the bin first
        /// when its last overflow and this refill were a batch's round trip, or, for a refill
        /// with an aligned run, any round trip: a run needs a stretch of the heap that is
        /// free and aligned, and the blocks an overflow gives back are single holes among live
        /// ones, so a bin that trades with the heap often makes the heap grow. Held to the
        /// batch rule, the bins of bench/aligned.c (a random walk) overflowed and refilled
        /// four times as often and peak RSS rose from 8.1 to 9.4 MiB (free bytes 2.8 to 3.5
        /// MiB, the largest free block 1.2 MiB to 222 KiB), against 1 MiB cached instead of
        /// 0.3 MiB.</summary>
        private static uint BatchSize(ThreadCache* tc, Bin* bin, uint units, bool aligned)
        {
            // Slow start: a bin's first refill carves two blocks, each later one twice
            // as many, up to half its refill budget. A size a program asks for once or twice
            // then does not carve (and fault in) a batch it will never use, which is
            // most sizes in a short-lived process; a hot size reaches full batches
            // after a handful of refills.
            if (bin->Overflowed != 0)
            {
                bin->Overflowed = 0;
                if (aligned || EmptiedAsABatch(tc, bin, units))
                {
                    uint most = MostBlocks(units);
                    uint grown = (uint)bin->Capacity * 2;
                    bin->Capacity = (ushort)(grown < most ? grown : most);
                }
            }
            uint want = 1 + (uint)bin->RefillMax / 2;
            uint ramp = 2u << bin->Refills;
            if (ramp < want)
            {
                want = ramp;
                bin->Refills++;
            }
            return want;
        }

        /// <summary>Puts blocks 1 to count-1 of a run carved for a refill (Cached) on top of the
        /// bin and counts them; block 0 is the caller's. Pieces lie above the caller's, in the
        /// order first-fit requests would get them: the farthest goes in first so the nearest
        /// comes out first.</summary>
        private static void LinkRefill(ThreadCache* tc, Bin* bin, Block* top, uint units, uint count)
        {
            if (count <= 1) return;
            LinkRun(bin, top, units, count);
            Count(tc, StatsLayout.CachedBytes, (long)(count - 1) * ((long)units << Blocks.UnitShift));
            Count(tc, StatsLayout.CacheRefillBlocks, count - 1);
        }

        /// <summary>A bin gave half its blocks back (it was full when a block came).</summary>
        public static void Overflowed(ThreadCache* tc, Bin* bin)
        {
            CountSlowPath(tc);
            bin->Overflowed = 1;
            nuint index = (nuint)(bin - BinAt(tc, 0));
            if (tc->StatsSlot >= 0) bin->FreesAtOverflow = FastFrees(tc, index);
        }

        /// <summary>Whether a bin that overflowed and is now empty got there the way a batch
        /// larger than the bin does: freed past its capacity, then allocated down to nothing
        /// with few frees of its size in between. Only then does doubling it save round trips.
        /// A size freed and allocated in turn at random (threads trading blocks, a working
        /// set that churns) also reaches both ends now and then, but as a random walk: from
        /// the half left after an overflow (C/2 of a capacity C) down to nothing takes about
        /// C²/6 steps, so about that many frees came between; doubling the bin there only
        /// parks more memory in it. A batch's last overflow is followed by fewer than C/2
        /// frees (more would overflow it again), so C/2 is the line. (Counting mallocs
        /// instead, at most 4C of them, let random walks of bins up to 32 blocks pass:
        /// cross-thread's caches held 2.8 MiB beside 260 KiB in use.) Frees are counted by
        /// the fast path in the thread's stats slot; a thread without a slot of its own
        /// grows its bins as before.</summary>
        private static bool EmptiedAsABatch(ThreadCache* tc, Bin* bin, uint units)
        {
            if (tc->StatsSlot < 0) return true;
            uint frees = FastFrees(tc, units - MinUnits) - bin->FreesAtOverflow;
            return frees <= (uint)bin->Capacity / 2;
        }

        /// <summary>Links blocks 1 to count-1 of a carved run (Cached) on top of a bin, the
        /// farthest first, so the nearest comes out first: what Link does block by block,
        /// with the count added once.</summary>
        private static void LinkRun(Bin* bin, Block* top, uint units, uint count)
        {
            nuint step = (nuint)units << Blocks.UnitShift;
            Block* below = bin->Head;
            byte* last = (byte*)top + (count - 1) * step;
            for (byte* p = last; p > (byte*)top; p -= step)
            {
                FreeLinks.SetNext((Block*)p, below);
                below = (Block*)p;
            }
            bin->Head = below;
            bin->Count += count - 1;
        }

        /// <summary>The most blocks a bin of <paramref name="units"/> may grow to.</summary>
        private static uint MostBlocks(uint units)
        {
            uint most = MaxBytes / (units << Blocks.UnitShift);
            return most < MinCapacity ? MinCapacity : most > MaxBlocks ? MaxBlocks : most;
        }

        /// <summary>Takes the home arena's remote list whole (one atomic exchange) and
        /// parks each block in this cache's bin for its size while there is room; returns
        /// the rest, still Cached, linked, for the caller to free into the heap.</summary>
        private static Block* AdoptRemote(ThreadCache* tc, Arena* a)
        {
            Block* b = (Block*)Interlocked.Exchange(ref *(long*)&a->Remote, 0);
            Block* spill = null;
            int call = tc->CurrentCall;
            while (b != null)
            {
                FreeLinks.CheckCached(b, call);
                Block* next = FreeLinks.Next(b, call);
                uint units = b->SizeUnits;
                Bin* bin = units <= MaxUnits ? BinFor(tc, units) : null;
                if (bin != null && bin->Count < MostBlocks(units))
                {
                    // The owner takes its blocks back to allocate them again (a producer
                    // whose consumer frees them): its bin grows to hold them, up to the
                    // most a bin may hold, rather than freeing them into the heap only to
                    // carve them out again.
                    Link(bin, b);
                    if (bin->Count > bin->Capacity) bin->Capacity = (ushort)bin->Count;
                }
                else
                {
                    FreeLinks.SetNext(b, spill);
                    spill = b;
                }
                b = next;
            }
            return spill;
        }
    }
}
