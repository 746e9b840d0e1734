// Arenas, placement (docs/heap.md, "Placement: address-ordered first fit"): the
// lowest free block that fits, growing the heap when none does, and carving the
// allocation (or a run of blocks for a thread cache's refill) from its bottom.
// Apart from aligned placement (Arena.AlignedPlacement.cs), which has rules of
// its own.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>The lowest free block of at least <paramref name="units"/>, growing the
        /// heap when none fits; null when the OS has no memory. The search is inlined
        /// into the caller; what comes when it finds nothing is a call of its own.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* FindFit(Arena* a, uint units)
        {
            Block* b = FreeIndex.FirstFit(a, units);
            return b != null ? b : FindFitElsewhere(a, units);
        }

        /// <summary>FindFit when the index has no fit: blocks freed elsewhere first, then
        /// more heap (AddRegion).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static Block* FindFitElsewhere(Arena* a, uint units)
        {
            Block* b;
            // Before asking the OS: blocks other threads freed back to this arena.
            if (a->Remote != null)
            {
                ReleaseRemote(a);
                b = FreeIndex.FirstFit(a, units);
                if (b != null) return b;
            }
            // And the blocks the calling thread's own cache holds for this arena: a heap
            // about to grow is the moment to let them coalesce rather than add memory. The
            // held blocks above the bins' sizes first, alone: a few large blocks, often
            // enough, where emptying the bins too would have them refilled later (working
            // set: 474 M -> 488 M instructions when every such moment emptied them all).
            if (ThreadCaches.ReturnHeldLocked(a))
            {
                b = FreeIndex.FirstFit(a, units);
                if (b != null) return b;
            }
            if (ThreadCaches.ReturnCachedLocked(a))
            {
                b = FreeIndex.FirstFit(a, units);
                if (b != null) return b;
            }
            return AddRegion(a, units);
        }

        /// <summary>FindFit, as the node of the block that fits (null when the OS has no memory),
        /// for TakeNode. Inlined as FindFit is.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Node* FindFitNode(Arena* a, uint units)
        {
            Node* n = FreeIndex.FirstFitNode(a, units);
            return n != null ? n : FindFitNodeElsewhere(a, units);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static Node* FindFitNodeElsewhere(Arena* a, uint units)
        {
            Block* b = FindFitElsewhere(a, units);
            return b != null ? FreeIndex.NodeOf(b) : null;
        }

        /// <summary>More memory for a request of <paramref name="units"/> that no free block
        /// fits: the topmost region grown in place (GrowTopRegion), else a new region. Returns
        /// the free block (in the index) that holds it, or null when the OS has no memory.</summary>
        private static Block* AddRegion(Arena* a, uint units)
        {
            if (!FreeIndex.EnsureNode(a)) return null;
            Block* b = GrowTopRegion(a, units);
            if (b == null)
            {
                b = Regions.Map(a, units);
                if (b == null) return null;
                FreeIndex.Insert(a, b);
                a->EmptyRegions++;
                a->Stats[StatsLayout.FreeBytes] += Blocks.Bytes(b);
                a->Stats[StatsLayout.FreeBlocks]++;
            }
            HeapMap.RegionsChanged(a);
            return b;
        }

        /// <summary>The topmost region grown in place (Regions.GrowTop), the way brk grows a
        /// heap: the new space joins the region's last block when that is free (which then
        /// holds the request although it did not before), else becomes a free block of its
        /// own. A new region instead would leave that last block where it is and fault in
        /// pages of the new one, which the heap's growth did at every doubling. Returns the
        /// free block, in the index, or null when the top region cannot grow.</summary>
        private static Block* GrowTopRegion(Arena* a, uint units)
        {
            Block* space = Regions.GrowTop(a, units, out uint added);
            if (space == null) return null;
            Block* end = (Block*)((byte*)space + ((nuint)added << Blocks.UnitShift));
            a->Stats[StatsLayout.FreeBytes] += (nuint)added << Blocks.UnitShift;
            if (Blocks.PrevIsFree(space))
            {
                // The region's last block was free: it grows over the old sentinel.
                Block* last = Blocks.Prev(space);
                uint total = last->SizeUnits + added;
                Blocks.Retire(space);
                Blocks.Set(last, total, a->Index, Blocks.Free);
                Blocks.MarkPrevFree(end, total);
                FreeIndex.Resized(last);
                return last;
            }
            // The old sentinel's prev field already says the block below is used, and its size.
            Blocks.Set(space, added, a->Index, Blocks.Free);
            Blocks.MarkPrevFree(end, added);
            FreeIndex.Insert(a, space);
            a->Stats[StatsLayout.FreeBlocks]++;
            return space;
        }

        /// <summary>Serves <paramref name="units"/> from free block b (the first fit): the
        /// allocation is the bottom of b, and the rest above it takes over b's node in the
        /// index (nothing lies between them, so no search or rotation is needed). Carving
        /// the bottom keeps the untouched space at the top of the heap, so holes below it
        /// are the ones first fit reuses. A rest smaller than a minimum block goes with the
        /// allocation. Returns the used block. Inlined into the caller (a call and a frame on
        /// every heap malloc).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Take(Arena* a, Block* b, uint units) => TakeWithNode(a, b, units, FreeIndex.NodeOf(b));

        /// <summary>Take for the block of node <paramref name="n"/> as the search found it (FindFitNode):
        /// the block's link is checked to name n (FreeLinks.CheckNode) instead of being followed
        /// and checked against the page map of node chunks (docs/performance/fragmentation.md).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* TakeNode(Arena* a, Node* n, uint units)
        {
            Block* b = n->Block;
            FreeLinks.CheckNode(b, n);
            return TakeWithNode(a, b, units, n);
        }

        /// <summary>Take, with free block b's node n in hand (checked).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Block* TakeWithNode(Arena* a, Block* b, uint units, Node* n)
        {
            if (Regions.IsWholeRegion(b)) a->EmptyRegions--;
            uint old = b->SizeUnits;
            uint rest = old - units;
            ulong* s = a->Stats;
            if (rest >= Blocks.MinUnits)
            {
                FreeRestAbove(a, (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift)), units, rest, n);
                Blocks.Set(b, units, a->Index, Blocks.Used);
                s[StatsLayout.FreeBytes] -= (nuint)units << Blocks.UnitShift;
                return b;
            }
            FreeIndex.RemoveNode(a, n);
            Blocks.Set(b, b->SizeUnits, a->Index, Blocks.Used);
            Blocks.MarkPrevUsed(Blocks.Next(b));
            s[StatsLayout.FreeBytes] -= Blocks.Bytes(b);
            s[StatsLayout.FreeBlocks]--;
            return b;
        }

        /// <summary>Makes the <paramref name="units"/> at <paramref name="r"/> (just above a block
        /// of <paramref name="prevUnits"/>) a free block that takes over <paramref name="node"/>
        /// in the index: what is left when a free block is cut from below. Inlined into the
        /// carves (a call and a frame on most heap mallocs).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void FreeRestAbove(Arena* a, Block* r, uint prevUnits, uint units, Node* node)
        {
            Blocks.MarkPrevUsed(r);
            Blocks.Set(r, units, a->Index, Blocks.Free);
            Blocks.MarkPrevFree(Blocks.Next(r), units);
            FreeIndex.Replace(node, r);
        }

        /// <summary>Cuts <paramref name="count"/> blocks of <paramref name="units"/> from the
        /// bottom of free block b, exactly as that many Take calls would (what is left of b
        /// stays the lowest fit while it shrinks). Returns the first (lowest) piece, Used,
        /// for the caller; piece k (k = 1 .. count-1) lies k*units above it, Cached, for a
        /// thread cache. The caller chooses count so that the rest is 0 or a whole block,
        /// except for a single piece.</summary>
        public static Block* TakeRun(Arena* a, Block* b, uint units, uint count)
        {
            if (count == 1)
                return Take(a, b, units);
            if (Regions.IsWholeRegion(b)) a->EmptyRegions--;
            ulong* s = a->Stats;
            uint size = b->SizeUnits;
            uint total = units * count;
            uint rest = size - total;
            // Every page of the run gets a header written below (a bin's blocks are at most
            // 1 040 bytes), and the rest's header follows it.
            BeforeRunWrites(a, (byte*)b + ((nuint)total << Blocks.UnitShift) + (rest != 0 ? Blocks.HeaderBytes : 0));
            if (rest != 0)
            {
                FreeRestAbove(a, (Block*)((byte*)b + ((nuint)total << Blocks.UnitShift)), units, rest, FreeIndex.NodeOf(b));
            }
            else
            {
                FreeIndex.Remove(a, b);
                Blocks.MarkPrevUsed(Blocks.Next(b));
                s[StatsLayout.FreeBlocks]--;
            }
            Blocks.Set(b, units, a->Index, Blocks.Used);
            Blocks.SetRun((Block*)((byte*)b + ((nuint)units << Blocks.UnitShift)), count - 1, units, a->Index, Blocks.Cached);
            s[StatsLayout.FreeBytes] -= (nuint)total << Blocks.UnitShift;
            return b;
        }
    }
}
