// An arena: a lock, the regions it owns and the free index over their free
// blocks. Everything here runs with the arena's lock held; the entry points in
// Api/ take and release it. Placement follows docs/heap.md to the letter:
// address-ordered first fit, allocation at the low end of the chosen block,
// immediate coalescing with both neighbours on free.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Arena
    {
        // 128 bytes exactly (Stride): the small fields fill what would be padding.
        public int Lock;               // FutexLock word
        public ushort Index;
        public bool SpanTried;         // the reservation below was asked for
        public byte MapCountdown;      // slow-path unlocks until the heap map looks at the clock (HeapMap)
        public int EmptyRegions;       // wholly free regions kept mapped
        public uint SpanPages;         // the reservation's length in pages (less once its unused tail went back: TrimForRetry)
        public Node* NodeRoot;         // free index (FreeIndex): root node
        public Node* NodeFree;         //   released nodes, linked through Left
        public byte* NodeChunk;        //   where new nodes are carved from
        public nuint NodeChunkLeft;
        public ulong NodeDraws;        //   priorities drawn
        public byte* SpanBase;         // the arena's address-space reservation for regions (Regions)
        public nuint SpanUsed;
        public Region* Regions;        // address order
        public nuint NextRegionBytes;
        public ulong* Stats;           // this arena's slot in the stats segment
        public Block* Remote;          // blocks freed by threads that found the lock taken (see PushRemote)
        public ulong DirtyBytes;       // bytes freed since the last purge pass (see Purge)
        public long LastPurgeMs;       // when the last purge pass ran (CLOCK_MONOTONIC_COARSE)
        public long MapDueMs;          // when the arena's heap-map section may be rebuilt next (HeapMap)
    }

    internal static unsafe class Arenas
    {
        /// <summary>Each arena gets two cache lines of its own, so arenas never share one.</summary>
        public const int Stride = 128;
        /// <summary>One wholly free region per arena stays mapped to absorb churn.</summary>
        public const int RetainedEmptyRegions = 1;
        /// <summary>Free blocks of at least this many units give their inner pages back (Purge).</summary>
        private const uint PurgeMinUnits = (64 << 10) >> Blocks.UnitShift;
        /// <summary>A purge pass runs once this much has been freed since the last one…</summary>
        private const ulong PurgeStepBytes = 1 << 20;
        /// <summary>…and at least this long after it.</summary>
        private const long PurgeIntervalMs = 50;
        private const byte FlagAged = 1, FlagPurged = 2;

        // ---- allocation ----

        /// <summary>The lowest free block of at least <paramref name="units"/>, mapping a
        /// new region when none fits; null when the OS has no memory.</summary>
        public static Block* FindFit(Arena* a, uint units)
        {
            Block* b = FreeIndex.FirstFit(a, units);
            if (b != null) return b;
            // Before asking the OS: blocks other threads freed back to this arena.
            if (a->Remote != null)
            {
                ReleaseRemote(a);
                b = FreeIndex.FirstFit(a, units);
                if (b != null) return b;
            }
            // And the blocks the calling thread's own cache holds for this arena: a heap
            // about to grow is the moment to let them coalesce rather than add memory.
            if (ThreadCaches.ReturnCachedLocked(a))
            {
                b = FreeIndex.FirstFit(a, units);
                if (b != null) return b;
            }
            return AddRegion(a, units);
        }

        private static Block* AddRegion(Arena* a, uint units)
        {
            if (!FreeIndex.EnsureNode(a)) return null;
            Block* b = Regions.Map(a, units);
            if (b == null) return null;
            HeapMap.RegionsChanged(a);
            FreeIndex.Insert(a, b);
            a->EmptyRegions++;
            a->Stats[StatsLayout.FreeBytes] += Blocks.Bytes(b);
            a->Stats[StatsLayout.FreeBlocks]++;
            return b;
        }

        /// <summary>Serves <paramref name="units"/> from free block b (the first fit): the
        /// allocation is the bottom of b, and the rest above it takes over b's node in the
        /// index (nothing lies between them, so no search or rotation is needed). Carving
        /// the bottom keeps the untouched space at the top of the heap, so holes below it
        /// are the ones first fit reuses. A rest smaller than a minimum block goes with the
        /// allocation. Returns the used block.</summary>
        public static Block* Take(Arena* a, Block* b, uint units)
        {
            if (Regions.IsWholeRegion(b)) a->EmptyRegions--;
            uint old = b->SizeUnits;
            uint rest = old - units;
            ulong* s = a->Stats;
            if (rest >= Blocks.MinUnits)
            {
                FreeRestAbove(a, (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift)), units, rest, FreeIndex.NodeOf(b));
                Blocks.Set(b, units, a->Index, Blocks.Used);
                s[StatsLayout.FreeBytes] -= (nuint)units << Blocks.UnitShift;
                return b;
            }
            FreeIndex.Remove(a, b);
            Blocks.Set(b, b->SizeUnits, a->Index, Blocks.Used);
            Blocks.SetPrev(Blocks.Next(b), b->SizeUnits, free: false);
            s[StatsLayout.FreeBytes] -= Blocks.Bytes(b);
            s[StatsLayout.FreeBlocks]--;
            return b;
        }

        /// <summary>Makes the <paramref name="units"/> at <paramref name="r"/> (just above a block
        /// of <paramref name="prevUnits"/>) a free block that takes over <paramref name="node"/>
        /// in the index: what is left when a free block is cut from below.</summary>
        private static void FreeRestAbove(Arena* a, Block* r, uint prevUnits, uint units, Node* node)
        {
            Blocks.SetPrev(r, prevUnits, free: false);
            Blocks.Set(r, units, a->Index, Blocks.Free);
            Blocks.SetPrev(Blocks.Next(r), units, free: true);
            FreeIndex.Replace(a, node, r);
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
            if (rest != 0)
            {
                FreeRestAbove(a, (Block*)((byte*)b + ((nuint)total << Blocks.UnitShift)), units, rest, FreeIndex.NodeOf(b));
            }
            else
            {
                FreeIndex.Remove(a, b);
                Blocks.SetPrev(Blocks.Next(b), units, free: false);
                s[StatsLayout.FreeBlocks]--;
            }
            for (uint k = 0; k < count; k++)
            {
                Block* piece = (Block*)((byte*)b + ((nuint)(k * units) << Blocks.UnitShift));
                if (k > 0) Blocks.SetPrev(piece, units, free: false);
                Blocks.Set(piece, units, a->Index, k == 0 ? Blocks.Used : Blocks.Cached);
            }
            s[StatsLayout.FreeBytes] -= (nuint)total << Blocks.UnitShift;
            return b;
        }

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
            Node* candidate = null;
            Block* target = null;
            Node* n = FreeIndex.FirstFitNode(a, units);
            for (int tries = 0; n != null && tries < AlignedTries; tries++, n = FreeIndex.NextFit(n, units))
            {
                // The node's copies of address and size: the tries read no free memory.
                if ((target = PlaceAligned(n->Block, n->Size, units, alignment)) != null)
                {
                    candidate = n;
                    break;
                }
            }
            if (candidate == null && n != null)
            {
                // Past the tries: the lowest block that holds it at any address (the blocks
                // tried were all smaller, or one of them would have held it).
                candidate = FreeIndex.FirstFitNode(a, worst);
                if (candidate != null && (target = PlaceAligned(candidate->Block, candidate->Size, units, alignment)) == null)
                    candidate = null; // cannot happen (see worst); a new region rather than a wrong cut
            }
            if (candidate == null)
            {
                Block* fresh = AddRegion(a, worst);
                if (fresh == null || (target = PlaceAligned(fresh, fresh->SizeUnits, units, alignment)) == null)
                    return null;
                candidate = FreeIndex.NodeOf(fresh);
            }
            return CarveAligned(a, candidate, target, units);
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
                Blocks.SetPrev(target, headUnits, free: true);
                Blocks.Set(candidate, headUnits, a->Index, Blocks.Free);
            }
            Blocks.Set(target, units, a->Index, Blocks.Used);
            if (tailUnits != 0)
            {
                Block* tail = (Block*)blockEnd;
                Blocks.SetPrev(tail, units, free: false);
                Blocks.Set(tail, tailUnits, a->Index, Blocks.Free);
                Blocks.SetPrev((Block*)end, tailUnits, free: true);
                // The tail takes over the node (nothing lies between the two addresses).
                FreeIndex.Replace(a, node, tail);
                if (headUnits != 0)
                {
                    FreeIndex.InsertBelow(a, candidate, node);
                    s[StatsLayout.FreeBlocks]++;
                }
            }
            else
            {
                Blocks.SetPrev((Block*)end, units, free: false);
                if (headUnits != 0) FreeIndex.Resized(a, candidate);
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

        // ---- free ----

        /// <summary>Makes used block b free, merging it with free neighbours at once, and
        /// gives a region back to the OS when it is wholly free and another already is.</summary>
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
                FreeIndex.Resized(a, merged);
                s[StatsLayout.Coalesces]++;
                s[StatsLayout.FreeBlocks]--;
            }
            else if (nextFree)
            {
                // b absorbs its upper neighbour and takes its place in the index.
                merged = b;
                Node* nextNode = FreeIndex.NodeOf(next);
                Blocks.Set(b, units + next->SizeUnits, a->Index, Blocks.Free);
                FreeIndex.Replace(a, nextNode, b);
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
            Blocks.SetPrev(Blocks.Next(merged), merged->SizeUnits, free: true);

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

        /// <summary>After a mapping failed (with a's lock held): every wholly free region
        /// goes back to the OS, the one normally kept included, blocks other threads freed
        /// back to a first, and the unused tail of a's address-space reservation is given
        /// up (it counts against an address-space limit), so that the retry has the most
        /// room the process can give it.</summary>
        public static void TrimForRetry(Arena* a)
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
            Regions.ReleaseReservationTail(a);
            PublishLargest(a);
        }

        /// <summary>madvise(MADV_DONTNEED) on free block b's inner pages: still mapped,
        /// no longer resident. The header and the node pointer (the first 32 bytes) stay,
        /// and nothing past the block's end is touched.</summary>
        private static void ReleasePages(Block* b)
        {
            nuint first = OsMemory.RoundUpToPage((nuint)b + Blocks.MinBytes);
            nuint end = ((nuint)b + Blocks.Bytes(b)) & ~(OsMemory.PageSize - 1);
            if (end > first) Libc.madvise((void*)first, end - first, Libc.MADV_DONTNEED);
            b->Flags |= FlagPurged;
            b->Check = Blocks.ComputeCheck(b);
        }

        // ---- giving free pages back ----

        /// <summary>Gives the inner pages of cold free blocks back to the OS (madvise
        /// MADV_DONTNEED: still mapped, no longer resident, zero pages on the next touch).
        /// A pass runs at most every 50 ms, once a MiB has been freed since the last. A free
        /// block of 64 KiB or more is marked aged by one pass and purged by the next if it
        /// has not changed since (any change to a block clears its flags), so memory that
        /// is reused soon is not purged only to be faulted in again, and the system calls
        /// are few.</summary>
        private static void Purge(Arena* a)
        {
            long now = Clock.CoarseMilliseconds();
            if (now - a->LastPurgeMs < PurgeIntervalMs) return;
            a->LastPurgeMs = now;
            a->DirtyBytes = 0;
            PurgeBelow(a, a->NodeRoot);
        }

        private static void PurgeBelow(Arena* a, Node* n)
        {
            if (FreeIndex.SubtreeMax(n) < PurgeMinUnits) return;
            PurgeBelow(a, n->Left);
            Block* b = n->Block;
            if (n->Size >= PurgeMinUnits && (b->Flags & FlagPurged) == 0)
            {
                if ((b->Flags & FlagAged) == 0)
                {
                    b->Flags |= FlagAged;
                }
                else
                {
                    ReleasePages(b);
                }
                b->Check = Blocks.ComputeCheck(b);
            }
            PurgeBelow(a, n->Right);
        }

        // ---- frees from other threads ----

        /// <summary>A thread that must give block b back to arena a while a's lock is
        /// taken (by the owner, typically) does not wait: it pushes b onto the arena's
        /// remote list with one compare-and-swap, and whoever takes the lock next puts
        /// the list's blocks back into the heap. The block stays Cached meanwhile, so a
        /// double free of it is still caught.</summary>
        public static void PushRemote(Arena* a, Block* b)
        {
            Blocks.SetState(b, Blocks.Cached);
            long head;
            do
            {
                head = (long)Atomics.Read((ulong*)&a->Remote);
                FreeLinks.SetNext(b, (Block*)head);
            }
            while (Interlocked.CompareExchange(ref *(long*)&a->Remote, (long)b, head) != head);
        }

        /// <summary>PushRemote for a chain of blocks (head..tail, linked through their
        /// first word, already Cached), with one compare-and-swap.</summary>
        public static void PushRemoteChain(Arena* a, Block* head, Block* tail)
        {
            long old;
            do
            {
                old = (long)Atomics.Read((ulong*)&a->Remote);
                FreeLinks.SetNext(tail, (Block*)old);
            }
            while (Interlocked.CompareExchange(ref *(long*)&a->Remote, (long)head, old) != old);
        }

        /// <summary>With a's lock held: frees every block on its remote list.</summary>
        public static void ReleaseRemote(Arena* a) =>
            ReleaseChain(a, (Block*)Interlocked.Exchange(ref *(long*)&a->Remote, 0));

        /// <summary>With a's lock held: frees a chain of Cached blocks linked through their first word.</summary>
        public static void ReleaseChain(Arena* a, Block* b)
        {
            ulong* s = a->Stats;
            int call = FreeLinks.CurrentCall();
            while (b != null)
            {
                FreeLinks.CheckCached(b, call);
                Block* next = FreeLinks.Next(b, call);
                s[StatsLayout.CachedBytes] -= Blocks.Bytes(b);
                s[StatsLayout.CacheReturnBlocks]++;
                Blocks.SetState(b, Blocks.Used);
                Release(a, b);
                b = next;
            }
        }

        // ---- in-place resizing (realloc) ----

        /// <summary>Shrinks used block b to <paramref name="units"/>, freeing a tail of at least a minimum block.</summary>
        public static void Shrink(Arena* a, Block* b, uint units)
        {
            uint tail = b->SizeUnits - units;
            if (tail < Blocks.MinUnits) return;
            Block* t = (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift));
            Blocks.SetPrev(t, units, free: false);
            Blocks.Set(t, tail, a->Index, Blocks.Used);
            Blocks.SetPrev(Blocks.Next(t), tail, free: false);
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
            uint nextUnits = next->SizeUnits;
            uint rest = total - units;
            s[StatsLayout.FreeBytes] -= (nuint)(nextUnits - (rest >= Blocks.MinUnits ? rest : 0)) << Blocks.UnitShift;
            if (rest >= Blocks.MinUnits)
            {
                // The rest of the neighbour stays free just above the grown block: it
                // takes the neighbour's place in the index (nothing lies between them).
                // r may lie only 16 bytes above next, its header over next's node
                // pointer: read it first. next's header is left as it is (it is inside the
                // grown block now, where the program's bytes will overwrite it).
                Node* nextNode = FreeIndex.NodeOf(next);
                FreeRestAbove(a, (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift)), units, rest, nextNode);
                Blocks.Set(b, units, a->Index, Blocks.Used);
            }
            else
            {
                FreeIndex.Remove(a, next);
                s[StatsLayout.FreeBlocks]--;
                Blocks.Retire(next);
                Blocks.Set(b, total, a->Index, Blocks.Used);
                Blocks.SetPrev(Blocks.Next(b), total, free: false);
            }
            return true;
        }

        /// <summary>Publishes the arena's largest free block (the index keeps it exact).</summary>
        public static void PublishLargest(Arena* a) =>
            a->Stats[StatsLayout.LargestFreeBlock] = (ulong)FreeIndex.Largest(a) << Blocks.UnitShift;
    }
}
