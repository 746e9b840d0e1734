// An arena: a lock, the regions it owns and the free index over their free
// blocks. Everything here runs with the arena's lock held; the entry points in
// Api/ take and release it. Placement follows docs/heap.md to the letter:
// address-ordered first fit, allocation at the low end of the chosen block,
// immediate coalescing with both neighbours on free.

using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heap
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Arena
    {
        public int Lock;               // FutexLock word
        public ushort Index;
        public int EmptyRegions;       // wholly free regions kept mapped
        public Block* Root;            // free index
        public Region* Regions;        // address order
        public nuint NextRegionBytes;
        public ulong* Stats;           // this arena's slot in the stats segment
        public ulong Reserved;
    }

    internal static unsafe class Arenas
    {
        /// <summary>Each arena gets two cache lines of its own, so arenas never share one.</summary>
        public const int Stride = 128;
        /// <summary>One wholly free region per arena stays mapped to absorb churn.</summary>
        public const int RetainedEmptyRegions = 1;

        // ---- allocation ----

        /// <summary>The lowest free block of at least <paramref name="units"/>, mapping a
        /// new region when none fits; null when the OS has no memory.</summary>
        public static Block* FindFit(Arena* a, uint units)
        {
            Block* b = FreeIndex.FirstFit(a->Root, units);
            return b != null ? b : AddRegion(a, units);
        }

        private static Block* AddRegion(Arena* a, uint units)
        {
            Block* b = Regions.Map(a, units);
            if (b == null) return null;
            a->Root = FreeIndex.Insert(a->Root, b);
            a->EmptyRegions++;
            a->Stats[StatsLayout.FreeBytes] += Blocks.Bytes(b);
            a->Stats[StatsLayout.FreeBlocks]++;
            return b;
        }

        /// <summary>Turns free block b into a used block of <paramref name="units"/> at its
        /// low end; a rest of at least the minimum block stays free above it.</summary>
        public static void Take(Arena* a, Block* b, uint units)
        {
            if (Regions.IsWholeRegion(b)) a->EmptyRegions--;
            a->Root = FreeIndex.Remove(a->Root, b);
            uint rest = b->SizeUnits - units;
            ulong* s = a->Stats;
            if (rest >= Blocks.MinUnits)
            {
                Block* r = (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift));
                r->PrevUnits = units;
                Blocks.Set(r, rest, a->Index, Blocks.Free);
                Blocks.Next(r)->PrevUnits = rest;
                a->Root = FreeIndex.Insert(a->Root, r);
                Blocks.Set(b, units, a->Index, Blocks.Used);
                s[StatsLayout.FreeBytes] -= (nuint)units << Blocks.UnitShift;
            }
            else
            {
                Blocks.Set(b, b->SizeUnits, a->Index, Blocks.Used);
                s[StatsLayout.FreeBytes] -= Blocks.Bytes(b);
                s[StatsLayout.FreeBlocks]--;
            }
        }

        /// <summary>Cuts <paramref name="count"/> blocks of <paramref name="units"/> from the
        /// bottom of free block b, exactly as that many Take calls would (b stays the
        /// lowest fit while it is cut from below). The first piece is Used (for the
        /// caller), the others Cached (for a thread cache). The caller chooses count so
        /// that the rest is 0 or a whole block, except for a single piece.</summary>
        public static void TakeRun(Arena* a, Block* b, uint units, uint count)
        {
            if (count == 1)
            {
                Take(a, b, units);
                return;
            }
            if (Regions.IsWholeRegion(b)) a->EmptyRegions--;
            a->Root = FreeIndex.Remove(a->Root, b);
            ulong* s = a->Stats;
            uint total = units * count;
            uint rest = b->SizeUnits - total;
            if (rest != 0)
            {
                Block* r = (Block*)((byte*)b + ((nuint)total << Blocks.UnitShift));
                r->PrevUnits = units;
                Blocks.Set(r, rest, a->Index, Blocks.Free);
                Blocks.Next(r)->PrevUnits = rest;
                a->Root = FreeIndex.Insert(a->Root, r);
            }
            else
            {
                s[StatsLayout.FreeBlocks]--;
                Blocks.Next(b)->PrevUnits = units;
            }
            s[StatsLayout.FreeBytes] -= (nuint)total << Blocks.UnitShift;
            for (uint i = 0; i < count; i++)
            {
                Block* piece = (Block*)((byte*)b + ((nuint)(i * units) << Blocks.UnitShift));
                if (i > 0) piece->PrevUnits = units;
                Blocks.Set(piece, units, a->Index, i == 0 ? Blocks.Used : Blocks.Cached);
            }
        }

        /// <summary>Places an <paramref name="alignment"/>-aligned block of <paramref name="units"/>
        /// in the lowest free block that can hold it (docs/heap.md, "Aligned requests").</summary>
        public static Block* TakeAligned(Arena* a, uint units, nuint alignment)
        {
            Block* candidate = FreeIndex.FirstFit(a->Root, units);
            nuint gap = 0;
            while (candidate != null && !FitsAligned(candidate, units, alignment, out gap))
                candidate = FreeIndex.FirstFitAbove(a->Root, units, candidate);
            if (candidate == null)
            {
                // Room for the block, the worst alignment gap and a free block before it.
                uint worst = units + (uint)((alignment + Blocks.MinBytes) >> Blocks.UnitShift);
                candidate = AddRegion(a, worst);
                if (candidate == null || !FitsAligned(candidate, units, alignment, out gap))
                    return null;
            }
            Block* target = candidate;
            if (gap != 0)
            {
                // Split the candidate: its low part stays a free block (same address,
                // smaller size); the aligned part becomes a free block of its own.
                if (Regions.IsWholeRegion(candidate)) a->EmptyRegions--;
                uint gapUnits = (uint)(gap >> Blocks.UnitShift);
                uint restUnits = candidate->SizeUnits - gapUnits;
                target = (Block*)((byte*)candidate + gap);
                target->PrevUnits = gapUnits;
                Blocks.Set(target, restUnits, a->Index, Blocks.Free);
                Blocks.Next(target)->PrevUnits = restUnits;
                Blocks.Set(candidate, gapUnits, a->Index, Blocks.Free);
                FreeIndex.Resized(a->Root, candidate);
                a->Root = FreeIndex.Insert(a->Root, target);
                a->Stats[StatsLayout.FreeBlocks]++;
            }
            Take(a, target, units);
            return target;
        }

        /// <summary>Where an aligned payload would go in free block b: the gap before its
        /// header is 0 or at least a minimum block, and the block must fit after it.</summary>
        private static bool FitsAligned(Block* b, uint units, nuint alignment, out nuint gap)
        {
            nuint start = (nuint)b;
            nuint payload = (start + Blocks.HeaderBytes + alignment - 1) & ~(alignment - 1);
            gap = payload - Blocks.HeaderBytes - start;
            if (gap != 0 && gap < Blocks.MinBytes) gap += alignment;
            return gap + ((nuint)units << Blocks.UnitShift) <= Blocks.Bytes(b);
        }

        // ---- free ----

        /// <summary>Makes used block b free, merging it with free neighbours at once, and
        /// gives a region back to the OS when it is wholly free and another already is.</summary>
        public static void Release(Arena* a, Block* b)
        {
            ulong* s = a->Stats;
            uint units = b->SizeUnits;
            s[StatsLayout.FreeBytes] += (nuint)units << Blocks.UnitShift;
            s[StatsLayout.FreeBlocks]++;

            Block* next = Blocks.Next(b);
            if (next->State == Blocks.Free)
            {
                a->Root = FreeIndex.Remove(a->Root, next);
                units += next->SizeUnits;
                Blocks.Retire(next);
                s[StatsLayout.Coalesces]++;
                s[StatsLayout.FreeBlocks]--;
            }

            Block* merged;
            if (b->PrevUnits != 0 && Blocks.Prev(b)->State == Blocks.Free)
            {
                // The lower neighbour absorbs b: same address, so its index node stays
                // where it is and only the subtree maxima above it change.
                merged = Blocks.Prev(b);
                Blocks.Set(merged, merged->SizeUnits + units, a->Index, Blocks.Free);
                Blocks.Retire(b);
                FreeIndex.Resized(a->Root, merged);
                s[StatsLayout.Coalesces]++;
                s[StatsLayout.FreeBlocks]--;
            }
            else
            {
                merged = b;
                Blocks.Set(b, units, a->Index, Blocks.Free);
                a->Root = FreeIndex.Insert(a->Root, b);
            }
            Blocks.Next(merged)->PrevUnits = merged->SizeUnits;

            if (Regions.IsWholeRegion(merged))
            {
                if (a->EmptyRegions >= RetainedEmptyRegions)
                {
                    a->Root = FreeIndex.Remove(a->Root, merged);
                    s[StatsLayout.FreeBytes] -= Blocks.Bytes(merged);
                    s[StatsLayout.FreeBlocks]--;
                    Regions.Unmap(a, Regions.OfWholeBlock(merged));
                }
                else
                {
                    a->EmptyRegions++;
                }
            }
        }

        // ---- in-place resizing (realloc) ----

        /// <summary>Shrinks used block b to <paramref name="units"/>, freeing a tail of at least a minimum block.</summary>
        public static void Shrink(Arena* a, Block* b, uint units)
        {
            uint tail = b->SizeUnits - units;
            if (tail < Blocks.MinUnits) return;
            Block* t = (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift));
            t->PrevUnits = units;
            Blocks.Set(t, tail, a->Index, Blocks.Used);
            Blocks.Next(t)->PrevUnits = tail;
            Blocks.Set(b, units, a->Index, Blocks.Used);
            Release(a, t);
        }

        /// <summary>Grows used block b to <paramref name="units"/> into a free upper neighbour, if it is big enough.</summary>
        public static bool TryGrow(Arena* a, Block* b, uint units)
        {
            Block* next = Blocks.Next(b);
            if (next->State != Blocks.Free) return false;
            uint total = b->SizeUnits + next->SizeUnits;
            if (total < units) return false;

            ulong* s = a->Stats;
            a->Root = FreeIndex.Remove(a->Root, next);
            s[StatsLayout.FreeBytes] -= Blocks.Bytes(next);
            s[StatsLayout.FreeBlocks]--;
            Blocks.Retire(next);

            uint rest = total - units;
            if (rest >= Blocks.MinUnits)
            {
                Block* r = (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift));
                r->PrevUnits = units;
                Blocks.Set(r, rest, a->Index, Blocks.Free);
                Blocks.Next(r)->PrevUnits = rest;
                a->Root = FreeIndex.Insert(a->Root, r);
                s[StatsLayout.FreeBytes] += (nuint)rest << Blocks.UnitShift;
                s[StatsLayout.FreeBlocks]++;
                Blocks.Set(b, units, a->Index, Blocks.Used);
            }
            else
            {
                Blocks.Set(b, total, a->Index, Blocks.Used);
                Blocks.Next(b)->PrevUnits = total;
            }
            return true;
        }

        /// <summary>Publishes the arena's largest free block (the root's subtree maximum).</summary>
        public static void PublishLargest(Arena* a) =>
            a->Stats[StatsLayout.LargestFreeBlock] = (ulong)FreeIndex.MaxUnits(a->Root) << Blocks.UnitShift;
    }
}
