// Entry points for tests and for people studying the heap:
//   int  konfiscator_heap_check(void)
//   long konfiscator_debug_free_blocks(unsigned long *out, long max_pairs)
//   long konfiscator_debug_regions(unsigned long *out, long max_pairs)
//   long konfiscator_debug_all_regions(unsigned long *out, long max_pairs)
//   int  konfiscator_debug_heap_map(void)
//   long konfiscator_debug_layout(unsigned long *out, long max)
//   int  konfiscator_debug_single_threaded(void)
//   long konfiscator_debug_release_held(void)
//   long konfiscator_debug_look_at_bins(void)
//   int  konfiscator_debug_walk_stack(unsigned long *frames, int capacity)
//   void konfiscator_debug_unwind_reads(unsigned long counts[3])
//   unsigned long konfiscator_debug_prefaulted_pages(void)

using System.Runtime;
using Konfiscator.Native.Heaps;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Debug
    {
        /// <summary>Walks every arena and returns how many invariants are broken (0 = sound).</summary>
        [RuntimeExport("konfiscator_heap_check")]
        public static int HeapCheck()
        {
            Heap.EnsureStarted();
            return Heap.CheckAll();
        }

        /// <summary>The blocks above the bins' sizes that the calling thread holds back from the
        /// heap (Heap/ThreadCache.Classes.cs) go into it, as at the thread's exit; returns how many
        /// bytes. Tests of the heap's placement call it first, so that they see the heap alone.</summary>
        [RuntimeExport("konfiscator_debug_release_held")]
        public static long ReleaseHeld()
        {
            Heap.EnsureStarted();
            ThreadCache* tc = Heap.PeekCache();
            if (tc == null) return 0;
            long bytes = (long)tc->HeldUnits << Blocks.UnitShift;
            ThreadCaches.ReleaseAllHeld(tc);
            return bytes;
        }

        /// <summary>The calling thread looks at its bins now, as it does every
        /// ThreadCaches.LookEvery slow paths (Heap/ThreadCache.Idle.cs): a bin that did not run
        /// empty since the last look gives half its blocks back. Returns the bytes given back.</summary>
        [RuntimeExport("konfiscator_debug_look_at_bins")]
        public static long LookAtBins()
        {
            Heap.EnsureStarted();
            ThreadCache* tc = Heap.PeekCache();
            return tc == null ? 0 : ThreadCaches.LookAtBins(tc);
        }

        /// <summary>The calling thread's stack as the sampler walks it (Sampling/Unwinder.cs): the
        /// return addresses of its frames, the caller's first (this library's own frames are
        /// skipped), at most <paramref name="capacity"/> of them (up to SampleLayout.MaxFrames);
        /// returns how many, or -1 when the walk could not start. Tests compare it with
        /// glibc's backtrace(), which walks with libgcc's unwinder.</summary>
        [RuntimeExport("konfiscator_debug_walk_stack")]
        public static int WalkStack(ulong* frames, int capacity)
        {
            Heap.EnsureStarted();
            if (frames == null || capacity <= 0) return 0;
            var trace = new Sampling.Unwinder.Trace
            {
                Frames = frames,
                Capacity = capacity < SampleLayout.MaxFrames ? capacity : SampleLayout.MaxFrames,
            };
            return Sampling.Unwinder.Walk(&trace) < 0 ? -1 : trace.Depth;
        }

        /// <summary>How the stack walks found their rows so far: counts[0] from the row cache,
        /// counts[1] reads of an object's tables from its file, counts[2] reads through its
        /// mapping (Sampling/ObjectFiles.cs, RowCache.cs). Tests check that walks through
        /// libc and the program read files, not the mappings.</summary>
        [RuntimeExport("konfiscator_debug_unwind_reads")]
        public static void UnwindReads(ulong* counts)
        {
            if (counts == null) return;
            counts[0] = Sampling.RowCache.Hits;
            counts[1] = Sampling.ObjectFiles.FileReads;
            counts[2] = Sampling.ObjectFiles.MappingReads;
        }

        /// <summary>Pages the thread caches' runs populated in one call instead of faulting in one
        /// by one (Heap/Arena.Prefault.cs), over the process's life; counted without atomics, so exact
        /// in a process with one thread.</summary>
        [RuntimeExport("konfiscator_debug_prefaulted_pages")]
        public static ulong PrefaultedPages() => Arenas.PrefaultedPages;

        /// <summary>1 while the heap's locks are taken with plain stores (glibc says this is the
        /// process's only thread), 0 once they are atomic (Platform/FutexLock.cs).</summary>
        [RuntimeExport("konfiscator_debug_single_threaded")]
        public static int SingleThreaded() => Platform.FutexLock.Alone() ? 1 : 0;

        /// <summary>The calling thread's cache as <paramref name="way"/> finds it: 0 as malloc's and
        /// free's fast paths do (the sole thread's cache while glibc says the process has one
        /// thread, Heap.cs), 1 by the thread's key alone, 2 the sole thread's cache as kept,
        /// whatever glibc says. 0 for none (no cache yet, or the thread is exiting). Tests compare
        /// the first two in each state a process can be in.</summary>
        [RuntimeExport("konfiscator_debug_thread_cache")]
        public static nint ThreadCacheFoundBy(int way)
        {
            Heap.EnsureStarted();
            return way switch
            {
                0 => (nint)Heap.PeekCache(),
                1 => (nint)Heap.PeekCacheOfThread(),
                _ => (nint)Heap.KeptSoleCache,
            };
        }

        /// <summary>The bytes of every block the thread caches hold, two ways: walked (every
        /// block in the Cached state in every arena's regions) and counted (the
        /// konfiscator_cached_bytes figure, summed over the stats slots as a reader does).
        /// They agree whenever no other thread is inside the allocator.</summary>
        [RuntimeExport("konfiscator_debug_cached_bytes")]
        public static void CachedBytes(long* walked, long* counted)
        {
            Heap.EnsureStarted();
            long sum = 0;
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                Arena* a = Heap.ArenaAt(i);
                Heap.LockArena(a);
                for (Region* r = a->Regions; r != null; r = r->Next)
                {
                    Block* end = Regions.Sentinel(r);
                    for (Block* b = Regions.FirstBlock(r); b < end && b->SizeUnits != 0; b = Blocks.Next(b))
                        if (b->State == Blocks.Cached) sum += (long)Blocks.Bytes(b);
                }
                Heap.UnlockArena(a);
            }
            *walked = sum;
            *counted = (long)Konfiscator.Native.Stats.StatsWriter.SumOverSlots(StatsLayout.CachedBytes);
        }

        [RuntimeExport("konfiscator_debug_free_blocks")]
        public static long FreeBlocks(ulong* output, long maxPairs)
        {
            Heap.EnsureStarted();
            Arena* a = Heap.HomeArena();
            Heap.LockArena(a);
            long count = 0;
            InOrder(a, a->NodeRoot, output, maxPairs, ref count);
            Heap.UnlockArena(a);
            return count;
        }

        private static void InOrder(Arena* a, Node* n, ulong* output, long maxPairs, ref long count)
        {
            if (n == null) return;
            InOrder(a, n->Left, output, maxPairs, ref count);
            if (count < maxPairs)
            {
                output[2 * count] = (ulong)n->Block;
                output[2 * count + 1] = Blocks.Bytes(n->Block);
            }
            count++;
            InOrder(a, n->Right, output, maxPairs, ref count);
        }

        /// <summary>Rebuilds every arena's section of the heap map now (it is otherwise rebuilt
        /// on slow paths, at most every 250 ms). Returns 1 when the map is published, else 0.</summary>
        [RuntimeExport("konfiscator_debug_heap_map")]
        public static int HeapMapNow()
        {
            Heap.EnsureStarted();
            if (Konfiscator.Native.Stats.StatsWriter.MapSection(0) == null) return 0;
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                Arena* a = Heap.ArenaAt(i);
                Heap.LockArena(a);
                HeapMap.UpdateNow(a);
                Heap.UnlockArena(a);
            }
            return 1;
        }

        /// <summary>The calling thread's home arena's regions as (first block, sentinel) pairs,
        /// up to <paramref name="maxPairs"/>; returns how many there are.</summary>
        [RuntimeExport("konfiscator_debug_regions")]
        public static long RegionList(ulong* output, long maxPairs)
        {
            Heap.EnsureStarted();
            long count = 0;
            ListRegions(Heap.HomeArena(), output, maxPairs, ref count);
            return count;
        }

        /// <summary>As konfiscator_debug_regions, for every arena: where any heap block can be.
        /// A thread's cache can hold blocks of other arenas (a cache handed over from a thread
        /// of another arena keeps its blocks), so a block the calling thread was given need not
        /// lie in its home arena.</summary>
        [RuntimeExport("konfiscator_debug_all_regions")]
        public static long AllRegionList(ulong* output, long maxPairs)
        {
            Heap.EnsureStarted();
            long count = 0;
            for (int i = 0; i < Heap.ArenaCount; i++) ListRegions(Heap.ArenaAt(i), output, maxPairs, ref count);
            return count;
        }

        private static void ListRegions(Arena* a, ulong* output, long maxPairs, ref long count)
        {
            Heap.LockArena(a);
            for (Region* r = a->Regions; r != null; r = r->Next, count++)
            {
                if (count >= maxPairs) continue;
                output[2 * count] = (ulong)Regions.FirstBlock(r);
                output[2 * count + 1] = (ulong)Regions.Sentinel(r);
            }
            Heap.UnlockArena(a);
        }
    }

    /// <summary>Layout facts the heap's code assumes, for a test to check against the constants
    /// they must match (the compiler cannot: sizeof of a struct with pointers is no constant).</summary>
    internal static unsafe class LayoutFacts
    {
        [RuntimeExport("konfiscator_debug_layout")]
        public static long Layout(ulong* output, long max)
        {
            // In this order: sizeof(Arena), Arenas.Stride, sizeof(Region), Regions.HeaderBytes,
            // sizeof(Block), Blocks.HeaderBytes, offset of ThreadCache.Bins, sizeof(Bin),
            // StatsLayout.SlotSize, StatsLayout.CacheLine, address of the calling thread's
            // first bin, ThreadCaches.BinCount, and the offset of the first bin as the heap's
            // code reaches it (ThreadCaches.BinAt), which must be the field's.
            const long Count = 13;
            if (max < Count) return Count;
            output[0] = (ulong)sizeof(Arena);
            output[1] = Arenas.Stride;
            output[2] = (ulong)sizeof(Region);
            output[3] = Regions.HeaderBytes;
            output[4] = (ulong)sizeof(Block);
            output[5] = Blocks.HeaderBytes;
            // Measured on the calling thread's cache (a field address through a null pointer
            // would be a null dereference to the compiler): 0 without one.
            Heap.EnsureStarted();
            ThreadCache* tc = Heap.CurrentCache();
            output[6] = tc == null ? 0 : (ulong)(tc->Bins - (byte*)tc);
            output[7] = (ulong)sizeof(Bin);
            output[8] = StatsLayout.SlotSize;
            output[9] = StatsLayout.CacheLine;
            output[10] = tc == null ? 0 : (ulong)tc->Bins;
            output[11] = ThreadCaches.BinCount;
            output[12] = tc == null ? 0 : (ulong)((byte*)ThreadCaches.BinAt(tc, 0) - (byte*)tc);
            return Count;
        }
    }
}
