// The allocating half of the API, past the inlined fast path in Exports: the
// thread cache (refilled from the heap), the heap itself by first fit in the
// thread's home arena, or a mapping of its own for a large request.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Allocation
    {
        /// <summary>Allocates <paramref name="size"/> bytes aligned to <paramref name="alignment"/>
        /// (a power of two); counts the call under <paramref name="callCounter"/>. Null and
        /// ENOMEM when there is no memory.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void* Allocate(nuint size, nuint alignment, int callCounter) => Allocate(size, alignment, callCounter, size);

        /// <summary>As above, counting down <paramref name="charge"/> bytes for sampling instead of
        /// the size (realloc charges only what a block grew by).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void* Allocate(nuint size, nuint alignment, int callCounter, nuint charge)
        {
            Heap.EnsureStarted();
            ThreadCache* tc = Heap.CurrentCache();
            if (tc != null) tc->CurrentCall = callCounter;
            Block* b = Place(tc, size, alignment);
            if (b == null && LargeBlocks.CouldBeMapped(size, alignment))
            {
                // The OS refused a mapping: give back what can be given back, try once more.
                // (A request larger than the address space was never asked of the OS.)
                Heap.TrimAfterFailedMapping(tc);
                b = Place(tc, size, alignment);
            }
            if (b == null)
            {
                CountFailure(callCounter, outOfMemory: true);
                Libc.SetErrno(Libc.ENOMEM);
                return null;
            }
            nuint usable = UsableSize(b);
            Counting.Allocated(tc, callCounter, size, usable);
            if (tc == null) return Blocks.Payload(b);
            if (usable >= LargeBlocks.Threshold) ThreadCaches.FlushInUse(tc);
            return SampledBlocks.ChargeGrowth(tc, b, charge, size);
        }

        /// <summary>malloc (or calloc or realloc(NULL), counted under <paramref name="callCounter"/>) of more than the
        /// thread caches' sizes (or of any size with the caches off), from the export for a thread
        /// that has its cache: the first fit in its home
        /// arena, as Place would choose, without looking the thread up again or going through
        /// Place's choice of path (callgrind, docs/performance/fragmentation.md). A request
        /// for its own mapping, a thread counted in the shared slot, or no memory, takes the
        /// general path.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void* AllocateFromHeap(ThreadCache* tc, nuint size, int callCounter = StatsLayout.MallocCalls)
        {
            if (size >= LargeBlocks.Threshold || tc->StatsSlot < 0) goto general;
            tc->CurrentCall = callCounter;
            ThreadCaches.CountSlowPath(tc);
            uint units = Blocks.UnitsFor(size);
            // A block of about this size the thread freed lately (ThreadCache.Classes.cs).
            Block* held = ThreadCaches.TakeHeld(tc, units);
            if (held != null) return Served(tc, held, size, callCounter);
            Block* b = FromHomeArena(tc, units, Blocks.HeaderBytes);
            if (b == null) goto general;           // the OS refused a region: the retry is there
            return Served(tc, b, size, callCounter);
        general:
            return Allocate(size, Blocks.HeaderBytes, callCounter);
        }

        /// <summary>malloc of a cached size that the inlined fast path did not serve (or a calloc or
        /// realloc(NULL) of one, counted under <paramref name="callCounter"/>), from the export for a thread that
        /// has its cache: its bin was empty, or the block on top failed the fast
        /// path's checks. The thread's bin, refilled from the heap when empty, as Place would do
        /// it, without looking the thread up again or going through Place's choice of path:
        /// through Allocate such a malloc cost about 410 instructions, 270 of them before the bin
        /// was reached (callgrind, fragmentation). A request for its own mapping, a thread
        /// counted in the shared slot, caches that are off, or no memory take the general path.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void* AllocateFromBin(ThreadCache* tc, nuint size, int callCounter = StatsLayout.MallocCalls)
        {
            // A request at or above the mapping threshold (mallopt can set it as low as 0) takes
            // its own mapping there, as it did before bins had this path.
            if (size >= LargeBlocks.Threshold || tc->StatsSlot < 0 || !ThreadCaches.Enabled) goto general;
            tc->CurrentCall = callCounter;
            uint units = Blocks.UnitsFor(size);
            Bin* bin = ThreadCaches.BinFor(tc, units);
            Block* b = ThreadCaches.Pop(bin, units, callCounter);   // checked: a bad link is reported
            if (b != null) ThreadCaches.Count(tc, StatsLayout.CachedBytes, -(long)Blocks.Bytes(b));
            else b = ThreadCaches.Refill(tc, bin, units);
            if (b == null) goto general;           // the OS refused a region: the retry is there
            return Served(tc, b, size, callCounter);
        general:
            return Allocate(size, Blocks.HeaderBytes, callCounter);
        }

        /// <summary>A malloc made by another call (calloc, realloc(NULL, n)), counted under
        /// <paramref name="callCounter"/>: malloc's own paths past its inlined one (the bin,
        /// refilled when empty, or the heap in the home arena) for a thread that has its cache;
        /// through Allocate such a call cost about 200 instructions more before its block
        /// (callgrind, docs/performance/small-objects.md). 0 goes the general way, as malloc(0)
        /// does, and so does a thread without a cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void* AllocateAs(nuint size, int callCounter)
        {
            ThreadCache* tc = Heap.PeekCache();
            if (tc == null || size == 0) return Allocate(size, Blocks.HeaderBytes, callCounter);
            return size <= ThreadCaches.MaxRequest ? AllocateFromBin(tc, size, callCounter) : AllocateFromHeap(tc, size, callCounter);
        }

        /// <summary>memalign, aligned_alloc and posix_memalign with an alignment above 16 (a power of
        /// two), from the exports for a thread that has its cache: a block of the thread's bins
        /// (Heap/AlignedCache.cs) or, when they have none, the heap's rule for aligned requests in
        /// its home arena, as Place would choose, without looking the thread up again or going
        /// through Place's choice of path: that entry cost bench/aligned.c about 200
        /// instructions a call before the bins were reached (EnsureStarted, the thread's lookup,
        /// Place's tests; callgrind, docs/performance/aligned.md). A request above the bins'
        /// sizes or for its own mapping, a thread counted in the shared slot, caches that are
        /// off, or no memory take the general path.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void* AllocateAligned(ThreadCache* tc, nuint size, nuint alignment, int callCounter)
        {
            if (size > ThreadCaches.MaxRequest || size >= LargeBlocks.Threshold || alignment > LargeBlocks.MaxHeapAlignment
                || tc->StatsSlot < 0 || !ThreadCaches.Enabled)
                goto general;
            tc->CurrentCall = callCounter;
            uint units = Blocks.UnitsFor(size);
            Block* b = AlignedCache.Take(tc, units, alignment);
            if (b == null) b = FromHomeArena(tc, units, alignment);
            if (b == null) goto general;           // the OS refused a region: the retry is there
            return Served(tc, b, size, callCounter);
        general:
            return Allocate(size, alignment, callCounter);
        }

        /// <summary>A used block of <paramref name="units"/> from the heap of the thread's home arena,
        /// by its rule (first fit, or the aligned rule above 16), with the arena's lock held only
        /// for that; the thread's copy of the arena's span is refreshed under it. Null when the OS
        /// refused a region.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Block* FromHomeArena(ThreadCache* tc, uint units, nuint alignment)
        {
            Arena* a = tc->Home;
            Heap.LockArena(a);
            Block* b;
            if (alignment <= Blocks.HeaderBytes)
            {
                Node* n = Arenas.FindFitNode(a, units);
                b = n != null ? Arenas.TakeNode(a, n, units) : null;
            }
            else
            {
                b = Arenas.TakeAligned(a, units, alignment);
            }
            ThreadCaches.SeeSpan(tc, a);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
            return b;
        }

        /// <summary>The end of AllocateFromHeap, AllocateFromBin and AllocateAligned, once block b is the caller's:
        /// counted in the thread's slot as Allocate counts a call, the bytes in use reported at
        /// once for a block at the mapping threshold or above (as Allocate does), sampling.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void* Served(ThreadCache* tc, Block* b, nuint size, int callCounter)
        {
            nuint usable = Blocks.UsableBytes(b);
            Counting.AllocatedInSlot(tc, callCounter, size, usable, StatsLayout.HistogramBucket(size));
            if (usable >= LargeBlocks.Threshold) ThreadCaches.FlushInUse(tc);
            return SampledBlocks.ChargeGrowth(tc, b, size, size);
        }

        /// <summary>The end of the malloc fast path when the thread's growth of bytes in use
        /// is large enough to look at: out of line, so the fast path keeps no frame.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void* AfterGrowth(ThreadCache* tc, Block* b, nuint size)
        {
            Counting.ReportGrowth(tc);
            return SampledBlocks.Charge(tc, b, size);
        }

        /// <summary>A used block for the request, from the cache, the heap or a mapping of its own; null when the OS has no memory.</summary>
        private static Block* Place(ThreadCache* tc, nuint size, nuint alignment)
        {
            Block* b;
            if (size >= LargeBlocks.Threshold || alignment > LargeBlocks.MaxHeapAlignment)
            {
                Arena* home = tc != null ? tc->Home : Heap.FallbackArena();
                b = LargeBlocks.Allocate(size, alignment < 16 ? 16 : alignment, home->Index);
            }
            else
            {
                uint units = Blocks.UnitsFor(size);
                bool cacheable = tc != null && ThreadCaches.Enabled && units <= ThreadCaches.MaxUnits;
                b = null;
                if (alignment <= Blocks.HeaderBytes && cacheable)
                {
                    Bin* bin = ThreadCaches.BinFor(tc, units);
                    b = ThreadCaches.Pop(bin, units, tc->CurrentCall);
                    if (b != null) ThreadCaches.Count(tc, StatsLayout.CachedBytes, -(long)Blocks.Bytes(b));
                    else b = ThreadCaches.Refill(tc, bin, units);
                }
                else
                {
                    // An aligned block of a cached size comes from the thread's bins when they
                    // have one or can cut one (Heap/AlignedCache.cs), else from the heap.
                    if (cacheable) b = AlignedCache.Take(tc, units, alignment);
                    // Above the bins: a block of about this size the thread freed lately, as
                    // malloc's own path takes (so realloc(NULL, n) returns what malloc(n) would).
                    else if (alignment <= Blocks.HeaderBytes && tc != null && tc->StatsSlot >= 0)
                        b = ThreadCaches.TakeHeld(tc, units);
                    if (b == null)
                    {
                        Arena* a = tc != null ? tc->Home : Heap.FallbackArena();
                        Heap.LockArena(a);
                        if (alignment <= Blocks.HeaderBytes)
                        {
                            Node* n = Arenas.FindFitNode(a, units);
                            if (n != null) b = Arenas.TakeNode(a, n, units);
                        }
                        else
                        {
                            b = Arenas.TakeAligned(a, units, alignment);
                        }
                        Arenas.PublishLargest(a);
                        Heap.UnlockArena(a);
                    }
                }
            }
            return b;
        }

        /// <summary>Counts a call that returned nothing (bad arguments, overflow, no memory).</summary>
        public static void CountFailure(int callCounter, bool outOfMemory)
        {
            Heap.EnsureStarted();
            ThreadCache* tc = Heap.CurrentCache();
            Counting.Call(tc, callCounter);
            if (outOfMemory) Counting.Call(tc, StatsLayout.FailedAllocations);
        }

        /// <summary>Counts a call that touches no block (free(NULL), malloc_usable_size).</summary>
        public static void CountCall(int callCounter)
        {
            Heap.EnsureStarted();
            Counting.Call(Heap.CurrentCache(), callCounter);
        }

        public static nuint UsableSize(Block* b) =>
            b->State == Blocks.Large ? LargeBlocks.Usable(b) : Blocks.UsableBytes(b);
    }
}
