// Arenas, aligned placement (docs/heap.md, "Aligned requests"): which free block
// an aligned request takes and how the block is cut around it. Apart from plain
// placement because the search (a few tries, then a sure fit) and the cut (a head
// and a tail, each a free block) are its own.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>How many free blocks of the block size an aligned request tries, lowest
        /// first, before it settles for the lowest block large enough for any alignment
        /// (docs/heap.md, "Aligned requests").</summary>
        public const int AlignedTries = 4;

        /// <summary>Places an <paramref name="alignment"/>-aligned block of <paramref name="units"/>
        /// (docs/heap.md, "Aligned requests"): in the lowest of the first AlignedTries free
        /// blocks of at least that size that can hold it, else in the lowest free block of at
        /// least the size plus the worst alignment gap (which always can); as low in it as it
        /// goes. Returns the used block or null.
        ///
        /// Why not the lowest block that can hold it, whatever it takes to find: whether a
        /// block can depends on its address modulo the alignment, which no subtree maximum
        /// summarizes, so finding it meant testing every block of the size below the first
        /// sure one; among thousands of live blocks, thousands of tests per call (87 µs per
        /// memalign(256, …) at 10 000 live blocks, issue 8). Now a call costs two descents
        /// and at most AlignedTries steps.</summary>
        public static Block* TakeAligned(Arena* a, uint units, nuint alignment)
        {
            // A tail may need a node of its own; without memory for one, no allocation.
            if (!FreeIndex.EnsureNode(a)) return null;
            // Room for the block, the worst alignment gap and a free block after it.
            uint worst = units + (uint)((alignment + Blocks.MinBytes) >> Blocks.UnitShift);
            Node* candidate = FindAligned(a, units, alignment, worst, out Block* target);
            // Before the heap grows, as FindFit does: the blocks other threads freed back to
            // this arena, and the calling thread's cached blocks of it, which may coalesce
            // into a fit. (Without this, a thread whose aligned requests reuse its cached
            // blocks mapped a region where the blocks in its bins would have done: issue 8.)
            if (candidate == null && ReclaimBeforeGrowing(a) && FreeIndex.EnsureNode(a))
                candidate = FindAligned(a, units, alignment, worst, out target);
            if (candidate == null)
            {
                Block* fresh = AddRegion(a, worst);
                if (fresh == null || (target = PlaceAligned(fresh, fresh->SizeUnits, units, alignment)) == null)
                    return null;
                candidate = FreeIndex.NodeOf(fresh);
            }
            return CarveAligned(a, candidate, target, units);
        }

        /// <summary>TakeAligned for a run of <paramref name="count"/> blocks of <paramref name="units"/>
        /// each (a multiple of the alignment in units, so that every block of the run is
        /// aligned when the first is), placed as one aligned block by the rule above. Returns
        /// the first block, Used, for the caller; blocks 1 to count-1 follow it, Cached, for a
        /// thread cache's bin (Arenas.TakeRun's contract). A unit the placement added (a tail
        /// too small to be a block) would leave the last block a unit longer than its bin's
        /// size: that block is freed into the heap instead and <paramref name="count"/> says
        /// one fewer. Null when there is no memory.</summary>
        public static Block* TakeAlignedRun(Arena* a, uint units, ref uint count, nuint alignment)
        {
            Block* b = TakeAligned(a, units * count, alignment);
            if (b == null || count == 1) return b; // one block: any unit added goes with it
            ushort index = a->Index;
            uint total = b->SizeUnits;
            nuint step = (nuint)units << Blocks.UnitShift;
            Block* end = (Block*)((byte*)b + ((nuint)total << Blocks.UnitShift));
            Block* last = (Block*)((byte*)b + (count - 1) * step);
            uint lastUnits = total - units * (count - 1); // units, or units + 1
            BeforeRunWrites(a, (byte*)end); // a header every alignment, at most 1 KiB apart
            Blocks.Set(b, units, index, Blocks.Used);
            // The headers of blocks 1 to count-1 (or count-2), each above a used one.
            uint cached = lastUnits == units ? count - 1 : count - 2;
            if (cached != 0) Blocks.SetRun((Block*)((byte*)b + step), cached, units, index, Blocks.Cached);
            if (lastUnits == units)
            {
                Blocks.MarkPrevUsed(end);
                return b;
            }
            Blocks.MarkPrevUsed(last);
            Blocks.Set(last, lastUnits, index, Blocks.Used);
            Blocks.MarkPrevUsed(end);
            Release(a, last);
            count--;
            return b;
        }

        /// <summary>The search of TakeAligned: the node of the free block the aligned block
        /// goes in, and where in it (<paramref name="target"/>); null when none holds it.</summary>
        private static Node* FindAligned(Arena* a, uint units, nuint alignment, uint worst, out Block* target)
        {
            target = null;
            Node* n = FreeIndex.FirstFitNode(a, units);
            for (int tries = 0; n != null && tries < AlignedTries; tries++, n = FreeIndex.NextFit(n, units))
            {
                // The node's copies of address and size: the tries read no free memory.
                if ((target = PlaceAligned(n->Block, n->Size, units, alignment)) != null)
                    return n;
            }
            if (n == null) return null;
            // Past the tries: the lowest block that holds it at any address (the blocks
            // tried were all smaller, or one of them would have held it).
            Node* candidate = FreeIndex.FirstFitNode(a, worst);
            if (candidate != null && (target = PlaceAligned(candidate->Block, candidate->Size, units, alignment)) == null)
                candidate = null; // cannot happen (see worst); a new region rather than a wrong cut
            return candidate;
        }

        /// <summary>With a's lock held, before a region is mapped for a request that found no
        /// fit: the arena's remote frees and the calling thread's cached blocks of it go into
        /// the heap. True when any did (a search is worth repeating).</summary>
        private static bool ReclaimBeforeGrowing(Arena* a)
        {
            bool any = false;
            if (a->Remote != null)
            {
                ReleaseRemote(a);
                any = true;
            }
            return ThreadCaches.ReturnCachedLocked(a) | any;
        }

        /// <summary>Cuts used block <paramref name="target"/> of <paramref name="units"/> out of the
        /// free block of <paramref name="node"/>: the gap before it (0 or a minimum block at
        /// least) stays free at the block's address, a gap after it of a minimum block or more
        /// becomes a free block of its own, a smaller one goes with the allocation.
        ///
        /// The index changes once per free block that remains, and the block that keeps the
        /// node is the one nearer the old size: with both a head and a tail, the tail (the
        /// rest of the region's top block, as a rule) takes over the node and the small head
        /// gets a new one. Keeping the node for the head instead shrank the largest block of
        /// the arena to a few units (a change carried to the root) and then inserted the tail
        /// as the new largest (the other way down again): issue 8, twice the work.</summary>
        private static Block* CarveAligned(Arena* a, Node* node, Block* target, uint units)
        {
            Block* candidate = node->Block;
            // The block and its node must agree (FreeLinks: a freed block's link checked).
            if (FreeIndex.NodeOf(candidate) != node) FreeLinks.Corrupted(FreeLinks.CurrentCall(), candidate);
            if (Regions.IsWholeRegion(candidate)) a->EmptyRegions--;
            ulong* s = a->Stats;
            byte* end = (byte*)candidate + ((nuint)node->Size << Blocks.UnitShift);
            byte* blockEnd = (byte*)target + ((nuint)units << Blocks.UnitShift);
            uint headUnits = (uint)((nuint)((byte*)target - (byte*)candidate) >> Blocks.UnitShift);
            uint tailUnits = (uint)((nuint)(end - blockEnd) >> Blocks.UnitShift);
            if (tailUnits != 0 && tailUnits < Blocks.MinUnits)
            {
                // A tail too small to be a block goes with the allocation, as for malloc.
                units += tailUnits;
                blockEnd = end;
                tailUnits = 0;
            }

            if (headUnits == 0 && tailUnits == 0)
            {
                // The whole block goes: out of the index while it still says free.
                FreeIndex.Remove(a, candidate);
                s[StatsLayout.FreeBlocks]--;
            }
            if (headUnits != 0)
            {
                Blocks.MarkPrevFree(target, headUnits);
                Blocks.Set(candidate, headUnits, a->Index, Blocks.Free);
            }
            Blocks.Set(target, units, a->Index, Blocks.Used);
            if (tailUnits != 0)
            {
                Block* tail = (Block*)blockEnd;
                Blocks.MarkPrevUsed(tail);
                Blocks.Set(tail, tailUnits, a->Index, Blocks.Free);
                Blocks.MarkPrevFree((Block*)end, tailUnits);
                // The tail takes over the node (nothing lies between the two addresses).
                FreeIndex.Replace(node, tail);
                if (headUnits != 0)
                {
                    FreeIndex.InsertBelow(a, candidate, node);
                    s[StatsLayout.FreeBlocks]++;
                }
            }
            else
            {
                Blocks.MarkPrevUsed((Block*)end);
                if (headUnits != 0) FreeIndex.Resized(candidate);
            }
            s[StatsLayout.FreeBytes] -= (nuint)units << Blocks.UnitShift;
            return target;
        }

        /// <summary>Where an aligned block of <paramref name="units"/> goes in free block b: as
        /// low as possible with the gap below it 0 or at least a minimum block (it stays a
        /// free block). Null when it does not fit.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Block* PlaceAligned(Block* b, uint sizeUnits, uint units, nuint alignment)
        {
            nuint start = (nuint)b;
            nuint end = start + ((nuint)sizeUnits << Blocks.UnitShift);
            nuint size = (nuint)units << Blocks.UnitShift;
            nuint payload = (start + Blocks.HeaderBytes + alignment - 1) & ~(alignment - 1);
            nuint head = payload - Blocks.HeaderBytes - start;
            if (head != 0 && head < Blocks.MinBytes) payload += alignment;
            if (payload - Blocks.HeaderBytes + size > end) return null;
            return (Block*)(payload - Blocks.HeaderBytes);
        }
    }
}
