// Arenas, free: a used block becomes free and merges with its free neighbours at
// once (docs/heap.md, "Free and coalescing"), and a wholly free region goes back to the OS
// when the arena already keeps one. Also the trim after a failed mapping, which
// gives back every wholly free region it can.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>Makes used block b free, merging it with free neighbours at once, and
        /// gives a region back to the OS when it is wholly free and another already is.
        /// Inlined into its callers (the heap free among them: a call and a frame on every
        /// free of a block above the thread caches' sizes; the small-block paths measured
        /// unchanged, docs/performance/fragmentation.md).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Release(Arena* a, Block* b)
        {
            // A block that merges with no neighbour needs a node of its own in the index.
            // With no memory left for one (the OS refused a chunk of nodes), the block
            // stays in use, lost to the heap, rather than the program being stopped.
            if (!Blocks.PrevIsFree(b) && Blocks.Next(b)->State != Blocks.Free && !FreeIndex.EnsureNode(a))
                return;
            ulong* s = a->Stats;
            uint units = b->SizeUnits;
            s[StatsLayout.FreeBytes] += (nuint)units << Blocks.UnitShift;
            s[StatsLayout.FreeBlocks]++;
            a->DirtyBytes += (nuint)units << Blocks.UnitShift;

            Block* next = Blocks.Next(b);
            bool nextFree = next->State == Blocks.Free;
            bool prevFree = Blocks.PrevIsFree(b);
            Block* merged;
            if (prevFree)
            {
                // The lower neighbour absorbs b (and the upper one, if free): same
                // address, so its index node stays where it is and only maxima rise.
                if (nextFree)
                {
                    FreeIndex.Remove(a, next);
                    units += next->SizeUnits;
                    Blocks.Retire(next);
                    s[StatsLayout.Coalesces]++;
                    s[StatsLayout.FreeBlocks]--;
                }
                merged = Blocks.Prev(b);
                Blocks.Set(merged, merged->SizeUnits + units, a->Index, Blocks.Free);
                Blocks.Retire(b);
                FreeIndex.Resized(merged);
                s[StatsLayout.Coalesces]++;
                s[StatsLayout.FreeBlocks]--;
            }
            else if (nextFree)
            {
                // b absorbs its upper neighbour and takes its place in the index.
                merged = b;
                Node* nextNode = FreeIndex.NodeOf(next);
                Blocks.Set(b, units + next->SizeUnits, a->Index, Blocks.Free);
                FreeIndex.Replace(nextNode, b);
                Blocks.Retire(next);
                s[StatsLayout.Coalesces]++;
                s[StatsLayout.FreeBlocks]--;
            }
            else
            {
                merged = b;
                Blocks.Set(b, units, a->Index, Blocks.Free);
                FreeIndex.Insert(a, b);
            }
            Blocks.MarkPrevFree(Blocks.Next(merged), merged->SizeUnits);

            if (Regions.IsWholeRegion(merged))
            {
                if (a->EmptyRegions < RetainedEmptyRegions || !UnmapEmptyRegion(a, merged))
                    a->EmptyRegions++;
            }
            if (a->DirtyBytes >= PurgeStepBytes) Purge(a);
        }

        /// <summary>Gives the region that free block b wholly covers back to the OS. When
        /// the kernel refuses (no map entry left to split a mapping: vm.max_map_count), the
        /// region stays, as one more empty region, with its pages given back (madvise needs
        /// no new map entry); it is tried again the next time it becomes empty, or when a
        /// mapping fails (TrimForRetry). Returns false then.</summary>
        private static bool UnmapEmptyRegion(Arena* a, Block* b)
        {
            ulong* s = a->Stats;
            nuint bytes = Blocks.Bytes(b); // b is gone once the region is
            FreeIndex.Remove(a, b);
            if (Regions.TryUnmap(a, Regions.OfWholeBlock(b)))
            {
                HeapMap.RegionsChanged(a);
                s[StatsLayout.FreeBytes] -= bytes;
                s[StatsLayout.FreeBlocks]--;
                return true;
            }
            FreeIndex.Insert(a, b); // takes the node Remove just gave back: no mapping needed
            ReleasePages(b);
            return false;
        }

        /// <summary>With a's lock held: the free pages at the end of each region go back to the
        /// OS (Regions.TrimTail). A region grows in place as the heap grows, so its top is
        /// where a heap that shrank keeps its free memory, as glibc's keeps it in its top chunk.</summary>
        private static void TrimRegionTails(Arena* a)
        {
            bool any = false;
            for (Region* r = a->Regions; r != null; r = r->Next)
            {
                Block* last = Blocks.Prev(Regions.Sentinel(r));
                nuint tail = Regions.TrimTail(a, r);
                if (tail == 0) continue;
                FreeIndex.Resized(last);
                a->Stats[StatsLayout.FreeBytes] -= tail;
                any = true;
            }
            if (any) HeapMap.RegionsChanged(a);
        }

        /// <summary>After a mapping failed, and for malloc_trim (with a's lock held): every
        /// wholly free region goes back to the OS, the one normally kept included, blocks other
        /// threads freed back to a first, then the free end of every other region, and, unless
        /// <paramref name="keepReservation"/>, the unused tail of a's address-space reservation
        /// is given up (it counts against an address-space limit), so that the retry has the
        /// most room the process can give it.</summary>
        public static void TrimForRetry(Arena* a, bool keepReservation = false)
        {
            ReleaseRemote(a);
            for (Region* r = a->Regions; r != null; )
            {
                Region* next = r->Next;
                Block* b = Regions.FirstBlock(r);
                if (b->State == Blocks.Free && Regions.IsWholeRegion(b) && UnmapEmptyRegion(a, b))
                    a->EmptyRegions--;
                r = next;
            }
            TrimRegionTails(a);
            if (!keepReservation) Regions.ReleaseReservationTail(a);
            PublishLargest(a);
        }
    }
}
