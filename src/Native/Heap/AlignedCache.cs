// Aligned requests of cached sizes served from the thread's cache (issue 8, case 6),
// the way glibc serves them from its bins: no search of the free index in the steady
// state, where the heap's rule (docs/heap.md, "Aligned requests") costs two descents
// of a tree of every free block, with a cache miss at nearly every step once there are
// thousands of them.
//
// With the caches on, memalign & co. for a block of a cached size (and A > 16) try,
// in this order:
//   1. the bin of the block's own size, its top SameSizeProbes blocks (HeapBoundProbes
//      when step 2 cannot serve it and the heap would), and the top
//      block of the bin one unit larger (taken whole: 16 bytes more), for one whose
//      payload is already A-aligned: a block freed by an earlier aligned request, as a
//      rule (C++ objects of one over-aligned type come and go at one size). No lock,
//      no header changed;
//   2. a block of the padded size (the size + A + 16 bytes, where an A-aligned block
//      fits wherever it lies), popped from its bin or, when that is empty, from the
//      bin's ordinary refill (one first-fit take from the heap, carving a batch). The
//      aligned block is cut from it as the heap cuts one: a gap before of 0 or at
//      least 32 bytes, a gap after of 32 bytes or more is a block of its own, one of 16
//      goes with the allocation. A gap is parked in the bin of its size while that bin
//      has room (small requests reuse it from there), else freed into the heap under
//      the lock the cut holds anyway (emptying half a full bin for it, a sort and a
//      free per block, costs more).
// Anything else (the padded size is over the largest cached one, or the heap has no
// memory) goes to the heap, placed by its rule.
//
// A cache is not a policy: with KONFISCATOR_TCACHE=0 none of this runs and every
// aligned request is placed exactly as docs/heap.md says. The protections of the
// bins hold here too: every link followed is read through FreeLinks (checked), every
// block taken must say Cached and have its bin's size, and a block is cut only after
// its header's check passed. Headers change under the lock of the block's arena, as
// they do everywhere else, so a walk of the arena (the heap map, the heap check)
// never sees a block half cut. A step 1 hit changes no header and takes no lock.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class AlignedCache
    {
        /// <summary>How many blocks of the request's own bin are looked at for one whose
        /// payload is aligned already. Each costs a checked link read; deeper ones seldom
        /// pay: blocks that did not fit stay on top until newer frees cover them.</summary>
        public const int SameSizeProbes = 2;

        /// <summary>The same when the request could not be cut from a padded cached block
        /// (its padded size is above the cached sizes: A ≥ 1024, or 512 with the largest
        /// sizes) and would go to the heap. There an aligned block is placed at the top of
        /// the newest region as a rule, leaving a gap below it of up to A bytes that only
        /// a refill of a bin reuses, and refills are rare once frees keep the bins full:
        /// in the bench's `aligned` (1 in 6 requests 1024-aligned) such gaps were 7 000 free
        /// blocks of 720–960 bytes, 6 MiB (docs/performance/memory.md). A block freed by an
        /// earlier request of the size and alignment is the one to reuse, and with a sixth
        /// of a bin's blocks aligned, eight probes find one three times in four: peak RSS
        /// 11.3 → 9.8 MiB, and 6% fewer instructions (the heap's search is dearer than the
        /// probes).</summary>
        public const int HeapBoundProbes = 8;

        /// <summary>An <paramref name="alignment"/>-aligned used block of <paramref name="units"/>
        /// (at most ThreadCaches.MaxUnits; alignment a power of two above 16) from the
        /// thread's bins; null when the request is for the heap.</summary>
        public static Block* Take(ThreadCache* tc, uint units, nuint alignment)
        {
            int call = tc->CurrentCall;
            // The size and the largest gap before it: A - 16 bytes at most, or A more when
            // it would be 16 (too small for a block).
            uint padded = units + (uint)(alignment >> Blocks.UnitShift) + 1;
            // A padded size above the fast bins' goes to the heap, as it did before the caches
            // served requests up to 2 KiB: the bins above hold two or three blocks and never
            // grow, so cutting from them meant a refill and a drain on nearly every call
            // (aligned scale=0.25: 395 M instructions this way, 441 M cutting from them).
            int probes = padded > ThreadCaches.FastMaxUnits ? HeapBoundProbes : SameSizeProbes;
            Block* b = TakeAlignedFromBin(ThreadCaches.BinFor(tc, units), units, alignment, call, probes);
            if (b == null && units < ThreadCaches.MaxUnits)
                b = TakeAlignedFromBin(ThreadCaches.BinFor(tc, units + 1), units + 1, alignment, call, 1);
            if (b != null)
            {
                Uncached(tc, b->SizeUnits);
                return b;
            }

            if (padded > ThreadCaches.FastMaxUnits) return null;
            Bin* bin = ThreadCaches.BinFor(tc, padded);
            b = ThreadCaches.Pop(bin, padded, call);
            if (b != null)
            {
                if (b->SizeUnits != padded) FreeLinks.Corrupted(call, b);
                Uncached(tc, padded);
            }
            // A refill's block may be a unit larger (a rest too small to be a block goes with it).
            else if ((b = ThreadCaches.Refill(tc, bin, padded)) == null) return null;
            return Cut(tc, b, units, alignment, call);
        }

        /// <summary>Unlinks and returns the first of the bin's top <paramref name="probes"/>
        /// blocks (of <paramref name="units"/>) whose payload is aligned (state Used), or null.</summary>
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

        /// <summary>Where an aligned block of <paramref name="units"/> goes in a block at b of
        /// <paramref name="sizeUnits"/>: as low as possible with the gap before it 0 or at
        /// least a minimum block. Null when it does not fit.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Block* Place(Block* b, uint sizeUnits, uint units, nuint alignment)
        {
            nuint start = (nuint)b;
            nuint payload = (start + Blocks.HeaderBytes + alignment - 1) & ~(alignment - 1);
            if (payload - Blocks.HeaderBytes - start == Blocks.HeaderBytes) payload += alignment;
            nuint header = payload - Blocks.HeaderBytes;
            return header + ((nuint)units << Blocks.UnitShift) <= start + ((nuint)sizeUnits << Blocks.UnitShift)
                ? (Block*)header : null;
        }

        /// <summary>Cuts the aligned block out of used block b (just taken from a bin or a
        /// refill, so this thread's alone, and large enough for any address); the gaps
        /// before and after are parked in their bins or freed into the heap. Returns the
        /// aligned block, Used.</summary>
        private static Block* Cut(ThreadCache* tc, Block* b, uint units, nuint alignment, int call)
        {
            // A header is trusted with a cut only once its check passed.
            if (!Blocks.CheckOk(b)) FreeLinks.Corrupted(call, b);
            uint sizeUnits = b->SizeUnits;
            Block* target = Place(b, sizeUnits, units, alignment);
            if (target == null) FreeLinks.Corrupted(call, b); // the callers chose b because it fits
            Block* end = (Block*)((byte*)b + ((nuint)sizeUnits << Blocks.UnitShift));
            uint headUnits = (uint)((nuint)((byte*)target - (byte*)b) >> Blocks.UnitShift);
            uint tailUnits = sizeUnits - headUnits - units;
            if (tailUnits < Blocks.MinUnits)
            {
                units += tailUnits; // 16 bytes after it cannot be a block: they go with it
                tailUnits = 0;
            }
            Block* tail = (Block*)((byte*)target + ((nuint)units << Blocks.UnitShift));

            // A gap goes to its bin while the bin has room (small requests reuse it there),
            // else into the heap now, under the lock the cut takes anyway: emptying half a
            // full bin for it (a sort and a free each) costs more.
            bool parkHead = headUnits != 0 && HasRoom(tc, headUnits, 0);
            bool parkTail = tailUnits != 0 && HasRoom(tc, tailUnits, parkHead && headUnits == tailUnits ? 1u : 0u);

            Arena* a = Heap.ArenaAt(b->Arena);
            ushort index = b->Arena;
            // The lock of the block's arena, as for every change of headers: the heap map
            // and the heap check walk the arena's blocks (cached ones too) holding it.
            Heap.LockArena(a);
            if (tailUnits != 0)
            {
                Blocks.SetPrev(tail, units, free: false);
                Blocks.Set(tail, tailUnits, index, parkTail ? Blocks.Cached : Blocks.Used);
            }
            Blocks.SetPrev(end, tailUnits != 0 ? tailUnits : units, free: false);
            if (headUnits != 0)
            {
                Blocks.SetPrev(target, headUnits, free: false);
                Blocks.Set(target, units, index, Blocks.Used);
                Blocks.Set(b, headUnits, index, parkHead ? Blocks.Cached : Blocks.Used);
            }
            else
            {
                Blocks.Set(target, units, index, Blocks.Used);
            }
            bool released = false;
            if (tailUnits != 0 && !parkTail) { Arenas.Release(a, tail); released = true; }
            if (headUnits != 0 && !parkHead) { Arenas.Release(a, b); released = true; }
            if (released) Arenas.PublishLargest(a);
            Heap.UnlockArena(a);

            if (parkHead) Park(tc, b, headUnits);
            if (parkTail) Park(tc, tail, tailUnits);
            return target;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool HasRoom(ThreadCache* tc, uint units, uint taken)
        {
            Bin* bin = ThreadCaches.BinFor(tc, units);
            return bin->Count + taken < bin->Capacity;
        }

        /// <summary>Parks a gap (state Cached) in its bin, which has room (HasRoom).</summary>
        private static void Park(ThreadCache* tc, Block* b, uint units)
        {
            ThreadCaches.Push(ThreadCaches.BinFor(tc, units), b);
            ThreadCaches.Count(tc, StatsLayout.CachedBytes, (long)units << Blocks.UnitShift);
        }

        /// <summary>Counts a block of <paramref name="units"/> taken out of a bin.</summary>
        private static void Uncached(ThreadCache* tc, uint units) =>
            ThreadCaches.Count(tc, StatsLayout.CachedBytes, -((long)units << Blocks.UnitShift));
    }
}
