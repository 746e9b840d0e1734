// The exported C API: glibc's malloc family with glibc's semantics
// (docs/heap.md), plus the konfiscator_* debugging entry points in Debug.cs.
// Each export is a thin shell: argument rules here, placement in Allocation,
// Release and Resize.

using System.Runtime;
using System.Runtime.CompilerServices;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Exports
    {
        private const nuint PageSize = 4096;

        // malloc and free are the hot paths: a small request is served from the
        // thread's cache with no lock and no system call; everything else goes on
        // to Allocation / Release, kept out of line so this stays a few instructions.

        [RuntimeExport("malloc")]
        public static void* Malloc(nuint size)
        {
            ThreadCache* tc = Heap.PeekCacheOrMarker();
            // The request's 8-byte class (1..8 bytes class 1, 9..16 class 2, ...) and the bin it
            // lies in: bin k holds blocks of k + 2 units, 16k + 24 usable bytes (the last 8 in
            // the next header's first half), for requests of 16k + 9 .. 16k + 24 bytes, and
            // bin 0 all of 1..24; up to 1 032 bytes (the last bin; larger requests take the
            // slow path). 0 is class 0, which wraps around to a huge index below and goes the
            // slow way, as do sizes so large that adding 7 wraps them to class 0.
            nuint cls = (size + 7) >> 3;
            if ((nuint)tc > (nuint)ThreadCaches.Exited && cls - 1 < ThreadCaches.RequestClasses - 1)
            {
                nuint index = ThreadCaches.BinOfClass(cls);
                Bin* bin = ThreadCaches.BinAt(tc, index);
                Block* b = bin->Head;
                if (b != null)
                {
                    // A block or link that fails its check goes the slow way, which takes
                    // the same block through the checked pop and reports it; so does a
                    // thread that counts in the shared slot.
                    Block* next = FreeLinks.UncheckedNext(b);
                    if (b->State == Blocks.Cached && tc->StatsSlot >= 0)
                    {
                        // FreeLinks.IsPlausibleNext spelt out as branches: called, it costs this path
                        // about three instructions a malloc more (callgrind, small_batches).
                        if (next != null)
                        {
                            if (((nuint)next & 15) != 0) goto slow;
                            if ((ulong)next < PageMap.Low || (ulong)next >= PageMap.High) goto slow;
                        }
                        bin->Head = next;
                        bin->Count--;
                        Blocks.SetState(b, Blocks.Used);
                        // Everything rarely needed is a tail call, so this path keeps no frame.
                        if (Counting.AllocatedFromBin(tc, index, size, cls)) return Allocation.AfterGrowth(tc, b, size);
                        return SampledBlocks.Charge(tc, b, size);
                    }
                }
            }
        slow:
            // Above the caches' sizes: the heap; a cached size the lines above did not serve
            // (an empty bin, a block that failed the checks): the bin, refilled when empty;
            // 0 (a cached size, but not the fast path's) the general way.
            if ((nuint)tc > (nuint)ThreadCaches.Exited)
            {
                if (size > ThreadCaches.MaxRequest) return Allocation.AllocateFromHeap(tc, size);
                if (size != 0) return Allocation.AllocateFromBin(tc, size);
            }
            return Allocation.Allocate(size, Blocks.HeaderBytes, StatsLayout.MallocCalls);
        }

        [RuntimeExport("free")]
        public static void Free(void* p)
        {
            ThreadCache* tc = Heap.PeekCacheOrMarker();
            Block* b = Blocks.FromPayload(p);
            // The same checks as the slow path's validation, in the order that keeps
            // a wild pointer from being read: aligned, readable, then the header.
            // Readable: below the top of the home arena's highest region, in its reservation,
            // where every byte reads (regions, and regions given back: OsMemory.MakeReadable;
            // one subtraction and compare, where the page map's lookup was about 10
            // instructions a free), else on a heap page of any arena.
            // (NULL fails both: its header would be 16 bytes below address 0.)
            if ((nuint)tc > (nuint)ThreadCaches.Exited && ((nuint)p & 15) == 0
                && ((nuint)b - (nuint)tc->SpanLow < tc->SpanBytes || PageMap.Contains(b)))
            {
                // Used, no flags, of this thread's home arena, and of a bin's size: the bin. A
                // plain used block of another arena goes home instead (Heap/ThreadCache.Foreign.cs);
                // one of this arena above the cached sizes is held or goes into its heap
                // (Release.FreeToHeap). One call site for both, after the cached path: the
                // compiler then keeps this path's values in registers that need no saving (a
                // call placed between them cost two registers saved and restored on every free).
                nuint index = (nuint)b->SizeUnits - ThreadCaches.MinUnits;
                uint tag = Blocks.ArenaAndState(b);
                if (tag != tc->HomeUsedTag || index >= ThreadCaches.BinCount)
                {
                    // A plain used block of another arena, of a size this thread allocates from
                    // its own heap (its bin refilled), is cached here like the thread's own
                    // (ThreadCaches.SendsHome), so it goes on below without a call. Such a block
                    // stays another arena's, and every later free of it comes here: through
                    // FreeForeign that was 75 instructions more a free (larson with one long
                    // thread: 12 M of 187 M).
                    if (index >= ThreadCaches.BinCount || !Blocks.IsPlainUsed(b) || ThreadCaches.BinAt(tc, index)->Refills == 0)
                    {
                        Release.FreeNotCached(tc, p, b);
                        return;
                    }
                }
                // The arena is the tag's low byte (its state byte above says used): the check
                // from it, not from a second read of the header.
                if (Blocks.CheckOkUnsampled(b, (ushort)(tag & 0xFF)) && tc->StatsSlot >= 0)
                {
                    Bin* bin = ThreadCaches.BinAt(tc, index);
                    if (bin->Count < bin->Capacity)
                    {
                        ThreadCaches.Push(bin, b);
                        if (Counting.FreedToBin(tc, index)) Counting.ReportShrink(tc);
                        return;
                    }
                }
            }
            Release.Free(p, "free", StatsLayout.FreeCalls);
        }

        [RuntimeExport("cfree")]
        public static void Cfree(void* p)
        {
            Release.Free(p, "cfree", StatsLayout.FreeCalls);
            Allocation.CountCall(StatsLayout.CfreeCalls);
        }

        [RuntimeExport("calloc")]
        public static void* Calloc(nuint count, nuint size)
        {
            nuint total = count * size;
            if (size != 0 && total / size != count)
            {
                Allocation.CountFailure(StatsLayout.CallocCalls, outOfMemory: true);
                Libc.SetErrno(Libc.ENOMEM);
                return null;
            }
            // malloc's own paths, counted as a calloc (cc1 makes one call in four a calloc).
            void* p = Allocation.AllocateAs(total, StatsLayout.CallocCalls);
            if (p == null) return null;
            // A large block is a fresh mapping, zero already; a heap block may be reused.
            Block* b = Blocks.FromPayload(p);
            if (b->State != Blocks.Large)
                Libc.memset(p, 0, Blocks.UsableBytes(b));
            return p;
        }

        [RuntimeExport("realloc")]
        public static void* Realloc(void* p, nuint size) => Resize.Realloc(p, size, StatsLayout.ReallocCalls);

        [RuntimeExport("reallocarray")]
        public static void* ReallocArray(void* p, nuint count, nuint size)
        {
            nuint total = count * size;
            if (size != 0 && total / size != count)
            {
                Allocation.CountFailure(StatsLayout.ReallocarrayCalls, outOfMemory: true);
                Libc.SetErrno(Libc.ENOMEM);
                return null;
            }
            return Resize.Realloc(p, total, StatsLayout.ReallocarrayCalls);
        }

        [RuntimeExport("memalign")]
        public static void* Memalign(nuint alignment, nuint size)
        {
            // glibc: an alignment that is not a power of two is rounded up to one;
            // one too large to round up is EINVAL.
            if (alignment > ((nuint)1 << 62))
            {
                Allocation.CountFailure(StatsLayout.MemalignCalls, outOfMemory: false);
                Libc.SetErrno(Libc.EINVAL);
                return null;
            }
            if (alignment <= Blocks.HeaderBytes)   // rounded up, still 16 at most
            {
                void* cached = AlignedEnoughFromBin(size, StatsLayout.MemalignCalls);
                if (cached != null) return cached;
            }
            return AllocateAligned(size, RoundUpToPowerOfTwo(alignment), StatsLayout.MemalignCalls);
        }

        /// <summary>An aligned request whose alignment every block has (16 bytes or less): the
        /// top block of the thread's bin for its size (the checked pop), counted under the call
        /// made, as Allocation counts it; null when the bin is empty (the caller goes on to
        /// Allocation). Without it such a call took the whole slow path: 270 instructions,
        /// 3.5 times glibc's (callgrind).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void* AlignedEnoughFromBin(nuint size, int callCounter)
        {
            ThreadCache* tc = Heap.PeekCache();
            if (tc == null || size > ThreadCaches.MaxRequest) return null;
            uint units = Blocks.UnitsFor(size);
            Block* b = ThreadCaches.Pop(ThreadCaches.BinFor(tc, units), units, callCounter);
            if (b == null) return null;
            ThreadCaches.Count(tc, StatsLayout.CachedBytes, -(long)Blocks.Bytes(b));
            Counting.Allocated(tc, callCounter, size, Blocks.UsableBytes(b));
            return SampledBlocks.Charge(tc, b, size);
        }

        /// <summary>An aligned request (a power of two) that AlignedEnoughFromBin did not serve:
        /// above 16, through the thread's cache when it has one (Allocation.AllocateAligned);
        /// else, as a plain request is, the general path (which refills the bin).</summary>
        private static void* AllocateAligned(nuint size, nuint alignment, int callCounter)
        {
            ThreadCache* tc = alignment > Blocks.HeaderBytes ? Heap.PeekCache() : null;
            return tc != null
                ? Allocation.AllocateAligned(tc, size, alignment, callCounter)
                : Allocation.Allocate(size, alignment, callCounter);
        }

        [RuntimeExport("aligned_alloc")]
        public static void* AlignedAlloc(nuint alignment, nuint size)
        {
            // As glibc 2.38 and C17: the alignment must be a power of two.
            if (!IsPowerOfTwo(alignment))
            {
                Allocation.CountFailure(StatsLayout.AlignedAllocCalls, outOfMemory: false);
                Libc.SetErrno(Libc.EINVAL);
                return null;
            }
            if (alignment <= Blocks.HeaderBytes)
            {
                void* cached = AlignedEnoughFromBin(size, StatsLayout.AlignedAllocCalls);
                if (cached != null) return cached;
            }
            return AllocateAligned(size, alignment, StatsLayout.AlignedAllocCalls);
        }

        [RuntimeExport("posix_memalign")]
        public static int PosixMemalign(void** result, nuint alignment, nuint size)
        {
            // POSIX: a power of two multiple of sizeof(void*), else EINVAL; errno is
            // not the channel here, the return value is, and errno stays as it was.
            if (!IsPowerOfTwo(alignment) || alignment % (nuint)sizeof(void*) != 0)
            {
                Allocation.CountFailure(StatsLayout.PosixMemalignCalls, outOfMemory: false);
                return Libc.EINVAL;
            }
            if (alignment <= Blocks.HeaderBytes)
            {
                void* cached = AlignedEnoughFromBin(size, StatsLayout.PosixMemalignCalls);
                if (cached != null)
                {
                    *result = cached;
                    return 0;
                }
            }
            int saved = *Libc.__errno_location();
            void* p = AllocateAligned(size, alignment, StatsLayout.PosixMemalignCalls);
            *Libc.__errno_location() = saved;
            if (p == null) return Libc.ENOMEM;
            *result = p;
            return 0;
        }

        [RuntimeExport("valloc")]
        public static void* Valloc(nuint size) => Allocation.Allocate(size, PageSize, StatsLayout.VallocCalls);

        [RuntimeExport("pvalloc")]
        public static void* Pvalloc(nuint size)
        {
            nuint rounded = (size + PageSize - 1) & ~(PageSize - 1);
            if (rounded < size)
            {
                Allocation.CountFailure(StatsLayout.PvallocCalls, outOfMemory: true);
                Libc.SetErrno(Libc.ENOMEM);
                return null;
            }
            return Allocation.Allocate(rounded == 0 ? PageSize : rounded, PageSize, StatsLayout.PvallocCalls);
        }

        [RuntimeExport("malloc_usable_size")]
        public static nuint MallocUsableSize(void* p)
        {
            Allocation.CountCall(StatsLayout.UsableSizeCalls);
            if (p == null) return 0;
            return Allocation.UsableSize(Heap.Validate("malloc_usable_size", p));
        }

        private static bool IsPowerOfTwo(nuint x) => x != 0 && (x & (x - 1)) == 0;

        private static nuint RoundUpToPowerOfTwo(nuint x)
        {
            nuint p = 1;
            while (p < x) p <<= 1;
            return p;
        }
    }
}
