// ThreadCaches, the caches themselves: making one for a new thread (from a pool
// of released ones, or carved from a mapping), retiring it at thread exit, and
// the pool's lock across fork. Apart from the bins because it is about the cache
// structures' lives, not the blocks in them.

using System.Runtime.CompilerServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        /// <summary>A cache's bytes with its bins, in whole cache lines: caches are carved
        /// one after another from page-aligned chunks, so each starts on a line.</summary>
        private static int StructBytes => ((sizeof(ThreadCache) + 63) / 64) * 64;

        private static ThreadCache* s_pool;      // released caches, for new threads
        private static ThreadCache* s_made;      // every cache ever made (NextMade)
        private static byte* s_chunk;            // where new caches are carved from
        private static nuint s_chunkLeft;

        /// <summary>A new cache for the calling thread (the caller stores it in the thread key):
        /// the cache a thread of the same home arena left at its exit, bins and blocks and all
        /// (see Retire), else an empty one.</summary>
        public static ThreadCache* Create(Arena* home)
        {
            ThreadCache* tc = TakeParked(home);
            if (tc != null) return Adopt(tc, home);
            tc = TakeFromPool();
            if (tc == null) return null;
            tc->Home = home;
            tc->HomeUsedTag = Blocks.PlainUsedTag(home->Index);
            tc->SpanLow = null;      // until the thread's first refill or heap call (SeeSpan)
            tc->SpanBytes = 0;
            tc->ForeignHead = tc->ForeignTail = null;
            tc->ForeignCount = 0;
            for (int c = 0; c < HeldClasses; c++) tc->HeldCount[c] = 0;
            tc->HeldUnits = 0;
            tc->LookCountdown = LookEvery;
            StartOnThread(tc);
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                bin->Head = null;
                bin->Count = 0;
                bin->Refills = 0;
                uint capacity = StartBytes / (units << Blocks.UnitShift);
                capacity = capacity < MinCapacity ? MinCapacity : capacity > StartMaxBlocks ? StartMaxBlocks : capacity;
                bin->Capacity = (ushort)(!s_enabled ? 0 : capacity);
                bin->RefillMax = (ushort)capacity;
                bin->Overflowed = 0;
                bin->RanEmpty = 0;
            }
            return tc;
        }

        // ---- handing a cache over at thread exit ----
        //
        // A thread that ends leaves its cache, blocks and bins as they are, parked at its home
        // arena (one per arena); the next thread that takes that arena takes it over whole.
        // A program that keeps replacing its threads (a server's short-lived workers, larson)
        // otherwise paid at every exit a drain of every bin (sorted, joined, coalesced into the
        // heap) and in every new thread the bins' slow start all over again: refills carved one
        // by one from a heap those drains had just fragmented, overflows and drains until the
        // bins had grown back (larson: about 1 M instructions a thread, 14% of the allocator's).
        // glibc's threads take over a free arena the same way, its tcache aside.
        //
        // A parked cache is nobody's: it is taken with one compare-and-swap, by the next thread
        // of its arena (Create), by that arena's heap before it maps a new region
        // (ReturnCachedLocked: the blocks go back into the heap, as a live thread's would), or
        // by malloc_trim and a failed mapping (DrainParked). Its blocks stay Cached, counted in
        // konfiscator_cached_bytes. Only one cache per arena is parked, of at most ParkMaxBytes;
        // a second thread of the same arena ending meanwhile, or a fuller cache, gives its
        // blocks back as before.

        private struct ParkedCaches { public fixed long OfArena[Heap.MaxArenas]; }
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static ParkedCaches s_parked;
#pragma warning restore CS0169, CS0649
        /// <summary>Caches emptied with an arena's lock held (ReturnCachedLocked), where the pool's
        /// lock may not be taken (fork takes it before the arenas' locks): pushed here lock-free,
        /// taken into the pool whole by TakeFromPool.</summary>
        private static long s_emptied;

        /// <summary>At thread exit: the cache is parked at its home arena for the next thread
        /// there (see above), else every cached block goes back to the heap and the cache to
        /// the pool. Either way the thread's foreign chain goes home and its stats slot back.</summary>
        public static void Retire(ThreadCache* tc)
        {
            FlushForeign(tc);
            FlushInUse(tc);
            if (tc->StatsSlot >= 0) StatsWriter.ReleaseThreadSlot(tc->StatsSlot);
            // From here until a thread takes it, whatever the cache counts goes to the shared slot.
            tc->StatsSlot = -1;
            tc->Stats = StatsWriter.SharedSlot;
            if (s_enabled && HeldBytes(tc) <= ParkMaxBytes
                && Interlocked.CompareExchange(ref *ParkedAt(tc->Home), (long)tc, 0) == 0) return;
            DrainAll(tc);
            ToPool(tc);
        }

        /// <summary>Most bytes a cache may hold to be parked at thread exit; a fuller one gives its
        /// blocks back into the heap, as before, so that what waits for a next thread that may
        /// never come stays bounded (one cache per arena). larson's threads leave 0.4-0.5 MiB.</summary>
        private const ulong ParkMaxBytes = 1 << 20;

        /// <summary>The bytes a cache's bins hold.</summary>
        private static ulong HeldBytes(ThreadCache* tc)
        {
            ulong held = (ulong)tc->HeldUnits << Blocks.UnitShift;
            for (uint units = MinUnits; units <= MaxUnits; units++)
                held += (ulong)BinFor(tc, units)->Count * (units << Blocks.UnitShift);
            return held;
        }

        private static long* ParkedAt(Arena* a)
        {
            fixed (long* p = s_parked.OfArena) return p + a->Index;
        }

        /// <summary>The cache parked at arena a, now the caller's alone; null when none is.</summary>
        private static ThreadCache* TakeParked(Arena* a)
        {
            long* slot = ParkedAt(a);
            long parked = (long)Atomics.Read((ulong*)slot);
            if (parked == 0 || Interlocked.CompareExchange(ref *slot, 0, parked) != parked) return null;
            return (ThreadCache*)parked;
        }

        /// <summary>A parked cache becomes the calling thread's: its bins and blocks stay, and
        /// the thread gets a stats slot of its own.</summary>
        private static ThreadCache* Adopt(ThreadCache* tc, Arena* home)
        {
            StartOnThread(tc);
            // The bins count as never refilled by this thread. So blocks of other arenas the
            // thread frees go home (ThreadCaches.SendsHome) until it refills their size itself,
            // as from a new thread's cache, and the refills' slow start begins again. Carried
            // over, the blocks of a live thread's arena that a cache once kept (larson's main
            // thread's, kept by its first generation) circulated from each thread to the next,
            // and a thread whose first free met one took the lowest idle arena, often the other
            // lane's: peak RSS 5.4 -> 6.2 MiB, CPU time up 10-20% (docs/performance/small-objects.md).
            // So does an overflow's record: it holds a count of the old thread's stats slot
            // (FreesAtOverflow), which means nothing against the new thread's.
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                bin->Refills = 0;
                bin->Overflowed = 0;
            }
            return tc;
        }

        /// <summary>What a cache needs of its own on the thread that takes it, new or adopted:
        /// a stats slot, a fresh count of bytes in use, a sampling countdown.</summary>
        private static void StartOnThread(ThreadCache* tc)
        {
            StartInUseCount(tc);
            tc->NextFree = null;
            tc->InSampler = 0;
            tc->SampleTid = 0;
            SampledBlocks.StartThread(tc);
            tc->StatsSlot = StatsWriter.ClaimThreadSlot();
            tc->Stats = tc->StatsSlot >= 0 ? StatsWriter.ThreadSlot(tc->StatsSlot) : StatsWriter.SharedSlot;
        }

        /// <summary>malloc_trim and a failed mapping (no lock held): every parked cache's blocks
        /// back to the heap, the caches to the pool.</summary>
        public static void DrainParked()
        {
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                ThreadCache* tc = TakeParked(Heap.ArenaAt(i));
                if (tc == null) continue;
                DrainAll(tc);
                ToPool(tc);
            }
        }

        private static void ToPool(ThreadCache* tc)
        {
            LockPool();
            tc->NextFree = s_pool;
            tc->Pooled = 1;
            s_pool = tc;
            UnlockPool();
        }

        /// <summary>ToPool with an arena's lock held: pushed onto s_emptied (lock-free).</summary>
        private static void ToPoolLater(ThreadCache* tc)
        {
            tc->Pooled = 1;
            fixed (long* emptied = &s_emptied)
            {
                long old;
                do
                {
                    old = (long)Atomics.Read((ulong*)emptied);
                    tc->NextFree = (ThreadCache*)old;
                }
                while (Interlocked.CompareExchange(ref *emptied, (long)tc, old) != old);
            }
        }

        /// <summary>Adds the thread's not yet reported change of bytes in use to the
        /// process-wide figure (and so to the peak).</summary>
        public static void FlushInUse(ThreadCache* tc)
        {
            if (tc->InUseDelta != 0)
            {
                StatsWriter.AddInUse(tc->InUseDelta);
                tc->InUseDelta = 0;
            }
            tc->GrowthLimit = StatsWriter.GrowthToLookAt();
            tc->ShrinkLimit = -StatsWriter.InUseReportStep();
        }

        /// <summary>A count of unreported bytes in use from zero (a thread that takes a cache, a
        /// fork child's caches): looked at again after the smallest growth or shrink that can matter.</summary>
        public static void StartInUseCount(ThreadCache* tc)
        {
            tc->InUseDelta = 0;
            tc->GrowthLimit = StatsWriter.PeakQuantumFloor;
            tc->ShrinkLimit = -StatsWriter.InUseReportStepFloor;
        }

        private static void LockPool() { fixed (int* w = &ForkLocks.CachePool) FutexLock.Acquire(w); }
        private static void UnlockPool() { fixed (int* w = &ForkLocks.CachePool) FutexLock.Release(w); }
        public static void LockForFork() => LockPool();
        public static void UnlockAfterFork() => UnlockPool();
        /// <summary>In a fork child, where only the forking thread (cache
        /// <paramref name="survivor"/>, or none) exists: every other cache in use belonged
        /// to a thread of the parent. glibc clears those threads' keys in the child, so
        /// none should be reached again; should one be (a descriptor reused with its key
        /// intact), it must not count into the parent's stats mapping, which the child no
        /// longer has: it counts in the child's shared slot from now on.</summary>
        public static void ResetAfterForkInChild(ThreadCache* survivor)
        {
            fixed (int* w = &ForkLocks.CachePool) FutexLock.ResetAfterFork(w);
            if (survivor != null) survivor->SampleTid = 0;   // the child's thread has an id of its own
            for (ThreadCache* tc = s_made; tc != null; tc = tc->NextMade)
            {
                if (tc == survivor || tc->Pooled != 0) continue;
                tc->StatsSlot = -1;
                tc->Stats = StatsWriter.SharedSlot;
                StartInUseCount(tc);
            }
        }

        /// <summary>With a's lock held, before the tail of a's reservation past
        /// <paramref name="bytes"/> is given back to the OS: no thread's copy of the
        /// reservation (SeeSpan) may reach past that any more; a null arena means every
        /// arena. One field per cache, so a fast path reading it concurrently sees the old
        /// range or the new, never a mix. Caches made while this runs start with no copy at all.</summary>
        public static void ShrinkSpans(Arena* a, nuint bytes)
        {
            for (ThreadCache* tc = s_made; tc != null; tc = tc->NextMade)
                if ((a == null || tc->Home == a) && tc->SpanBytes > bytes)
                    Atomics.Write((ulong*)&tc->SpanBytes, bytes);
        }

        /// <summary>A region given back inside a reservation stayed PROT_NONE (the kernel refused
        /// to make it readable): from now on no free reads a header by the range test, in any
        /// arena (the page map decides, as for blocks outside the reservations). Called with
        /// the region's arena lock held; other arenas' threads may still be reading their own
        /// ranges, which this region is not in.</summary>
        public static void StopSpanReads()
        {
            s_spanReadsStopped = true;
            ShrinkSpans(null, 0);
        }

        private static ThreadCache* TakeFromPool()
        {
            LockPool();
            if (s_pool == null) s_pool = (ThreadCache*)Interlocked.Exchange(ref s_emptied, 0);
            ThreadCache* tc = s_pool;
            if (tc != null)
            {
                s_pool = tc->NextFree;
                tc->Pooled = 0;
            }
            else
            {
                if (s_chunkLeft < (nuint)StructBytes)
                {
                    const nuint chunkBytes = 64 << 10;
                    s_chunk = Mappings.Map(chunkBytes);
                    s_chunkLeft = s_chunk == null ? 0 : chunkBytes;
                }
                if (s_chunkLeft >= (nuint)StructBytes)
                {
                    tc = (ThreadCache*)s_chunk;
                    s_chunk += StructBytes;
                    s_chunkLeft -= (nuint)StructBytes;
                    tc->NextMade = s_made;
                    s_made = tc;
                }
            }
            UnlockPool();
            return tc;
        }
    }
}
