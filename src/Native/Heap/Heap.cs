// Process-wide heap state: the arenas, which thread uses which, start-up and fork.
// Telling a pointer we handed out from anything else, and checking the heap's
// invariants, is Heap/Validation.cs.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Heap
    {
        private const int NotStarted = 0, Starting = 1, Ready = 2;
        public const int MaxArenas = 64;
        // glibc keeps the first 32 thread-specific values inline in the thread
        // descriptor; a higher key makes pthread_setspecific call calloc, i.e. us.
        private const uint InlineThreadKeys = 32;

        // volatile: read without a lock by threads waiting for start-up to finish.
        private static volatile int s_state;
        private static volatile int s_starterTid;
        private static byte* s_arenas;
        private static int s_arenaCount;
        private static uint s_threadKey;
        private static bool s_useThreadKey;
        // Ready and with a usable thread key: the one flag the fast paths test.
        private static bool s_fastPaths;
        // Threads whose caches have each arena as home (CreateCache, ThreadExit).
        private struct ThreadCounts { public fixed int OfArena[MaxArenas]; }
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static ThreadCounts s_threadsOfArena;
#pragma warning restore CS0169, CS0649
        /// <summary>Threads with stats slots of their own; more threads share one slot.</summary>
        private const int ThreadStatsSlots = 256;

        public static int ArenaCount => s_arenaCount;
        public static Arena* ArenaAt(int i) => (Arena*)(s_arenas + i * Arenas.Stride);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void EnsureStarted()
        {
            if (s_state != Ready) Start();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void Start()
        {
            #pragma warning disable CS0420 // Interlocked on a volatile field is exactly what is meant
            if (Interlocked.CompareExchange(ref s_state, Starting, NotStarted) != NotStarted)
#pragma warning restore CS0420
            {
                // Either another thread is starting the heap (wait for it), or this
                // thread re-entered from a libc call made during start-up (go on:
                // everything such a call needs is set up before those calls).
                int tid = Libc.gettid();
                if (tid == s_starterTid) return;
                while (s_state != Ready) Libc.sched_yield();
                return;
            }
            int saved = *Libc.__errno_location();
            s_starterTid = Libc.gettid();
            FreeLinks.Initialize();

            int cpus = ProcFs.UsableCpus();
            int count = cpus <= 0 ? 4 : cpus * 4;
            s_arenaCount = count > MaxArenas ? MaxArenas : count;

            if (!StatsWriter.Initialize(s_arenaCount, ThreadStatsSlots) || !PageMap.Initialize())
                Fatal.Die("cannot map the allocator's own bookkeeping");
            // Arenas sit Stride bytes apart: a field added to Arena must not push it past that.
            if (sizeof(Arena) > Arenas.Stride) Fatal.Die("the arena struct outgrew its stride");
            if (!FreeIndex.LayoutHolds()) Fatal.Die("the free index's node layout changed");
            s_arenas = Mappings.Map((nuint)(s_arenaCount * Arenas.Stride));
            if (s_arenas == null) Fatal.Die("cannot map the arenas");
            for (int i = 0; i < s_arenaCount; i++)
            {
                Arena* a = ArenaAt(i);
                a->Index = (ushort)i;
                a->NextRegionBytes = Regions.FirstBytes;
                a->Stats = StatsWriter.ArenaSlot(i);
                Arenas.UntouchedDropped(a);
            }
            ThreadCaches.Initialize(enabled: !Settings.IsOff(StatsSchema.ThreadCacheVariable));
            Sampling.Sampler.Configure();

            uint key;
            s_useThreadKey = Libc.pthread_key_create(&key, &ThreadExit) == 0 && key < InlineThreadKeys;
            s_threadKey = key;
            if (s_useThreadKey) s_keySlotOffset = FindKeySlot(key);

            s_state = Ready;
            s_fastPaths = s_useThreadKey;
            FastKeySlot.Offset = s_useThreadKey ? s_keySlotOffset : 0;
            // May call malloc inside glibc: the heap is ready by now.
            Libc.pthread_atfork(&BeforeFork, &AfterForkInParent, &AfterForkInChild);
            ExitSummary.RegisterIfAsked();
            *Libc.__errno_location() = saved;
        }

        // ---- which cache and arena a thread uses ----

        /// <summary>The calling thread's cache if it has one already; null otherwise
        /// (not started, no thread key, first call of the thread, or thread exiting).
        /// This is all the fast paths look at.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ThreadCache* PeekCache()
        {
            ThreadCache* sole = SoleThreadCache();
            return sole != null ? sole : PeekCacheOfThread();
        }

        /// <summary>PeekCache for the fast paths, without folding the two markers into null:
        /// null or <see cref="ThreadCaches.Exited"/> (no cache; one unsigned compare against
        /// Exited tells both), or the calling thread's cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ThreadCache* PeekCacheOrMarker()
        {
            ThreadCache* sole = SoleThreadCache();
            if (sole != null) return sole;   // (a conditional expression here costs the sole thread's path a jump)
            return KeySlot();
        }

        /// <summary>PeekCache by the thread's key alone, never the sole thread's cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ThreadCache* PeekCacheOfThread()
        {
            ThreadCache* v = KeySlot();
            return (nuint)v > (nuint)ThreadCaches.Exited ? v : null;
        }

        /// <summary>The thread key's value as stored (null, the Exited marker, or the cache), read
        /// from the thread descriptor's slot; where no slot was found, PeekCacheByKey's answer.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ThreadCache* KeySlot()
        {
            nint offset = FastKeySlot.Offset;
            if (offset == 0) return PeekCacheByKey();
            // One expression: the load is made before the GC poll that follows the call
            // (a no-op here, but a call), so fewer values are kept across it.
            return *(ThreadCache**)(Libc.pthread_self_fast() + offset);
        }

        // ---- the cache of a process's one thread, without pthread_self ----
        //
        // Finding a thread's cache costs a call to pthread_self (its PLT entry and two
        // instructions in glibc: 4% of bignum's time) before the key's slot is read.
        // While the process has one thread there is one cache to find: glibc's
        // __libc_single_threaded (FutexLock.cs) is set only in a process's first
        // thread before it creates another, and pthread_create clears it before the
        // new thread exists, so a thread that reads it set is the only one, and the
        // cache kept here is its own. It is kept when that thread's cache is made
        // (CreateCache) or found at start-up (AdoptSoleCache), set again in a child
        // after fork, and dropped when the thread exits, before its cache is retired,
        // or by the first call that finds the process has threads (SoleThreadCache).
        // It is set only while FutexLock.Alone(), so glibc's flag is known whenever it
        // is not null. The only static of a class of its own, as FastKeySlot.
        private static class SoleCache { public static ThreadCache* Cache; }

        /// <summary>The calling thread's cache if it is the process's only thread and has one;
        /// null otherwise. The first call that finds the process has threads drops the kept
        /// cache, so that from then on the fast paths read one null here, not glibc's flag too
        /// (that cost threaded programs 4% more instructions: callgrind, working_set threads=2).
        /// Racing threads only ever store null; only a thread alone stores a cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ThreadCache* SoleThreadCache()
        {
            ThreadCache* sole = SoleCache.Cache;
            if (sole == null) return null;
            if (FutexLock.AloneFlagKnown()) return sole;
            SoleCache.Cache = null;
            return null;
        }

        /// <summary>The sole thread's cache as kept (null when none), for the debug export.</summary>
        public static ThreadCache* KeptSoleCache => SoleCache.Cache;

        /// <summary>The library's initializer, once FutexLock has found glibc's single-thread
        /// flag: a thread alone keeps its cache as the process's one (made by a call before
        /// the initializer, or at its next call).</summary>
        public static void AdoptSoleCache()
        {
            if (FutexLock.Alone()) SoleCache.Cache = PeekCacheOfThread();
        }

        /// <summary>PeekCache before start-up, or where the key's slot was not found.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static ThreadCache* PeekCacheByKey()
        {
            if (!s_fastPaths) return null;
            void* v = Libc.pthread_getspecific(s_threadKey);
            return (nuint)v > (nuint)ThreadCaches.Exited ? (ThreadCache*)v : null;
        }

        // ---- reading the thread key without pthread_getspecific ----
        //
        // pthread_getspecific costs 18 instructions a call (a bounds test, the level
        // split, a sequence-number check), as much as the rest of a fast-path malloc.
        // glibc keeps the values of the first 32 keys inline in the thread descriptor,
        // which pthread_self() returns, at an offset that is fixed for a given glibc
        // but not part of its ABI. So the offset is found at start-up instead of
        // assumed: two distinct values stored with pthread_setspecific must each
        // appear at one and the same offset within the descriptor's first bytes, and
        // nowhere else. The sequence check is not needed: the key is never deleted.
        // When the search fails (another libc), PeekCache uses pthread_getspecific.

        private static nint s_keySlotOffset;
        // The same once the heap is ready (the one field the fast paths read), else 0.
        // The only static of a class of its own: ILC reaches a class's first static with one
        // RIP-relative operand, others through a lea of the class's statics first.
        private static class FastKeySlot { public static nint Offset; }
        private const int DescriptorScanBytes = 0x700; // well inside glibc's struct pthread (0x900 and more)
        private static ulong s_probeA, s_probeB;

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static nint FindKeySlot(uint key)
        {
            byte* self = Libc.pthread_self_fast();
            void* before = Libc.pthread_getspecific(key);
            nint found = 0;
            fixed (ulong* a = &s_probeA)
            fixed (ulong* b = &s_probeB)
            {
                if (Libc.pthread_setspecific(key, a) != 0) return 0;
                for (nint off = 8; off < DescriptorScanBytes; off += 8)
                {
                    if (*(void**)(self + off) != a) continue;
                    if (found != 0) { found = -1; break; }   // twice: ambiguous
                    found = off;
                }
                if (found > 0)
                {
                    Libc.pthread_setspecific(key, b);
                    if (*(void**)(self + found) != b || Libc.pthread_getspecific(key) != b) found = -1;
                }
            }
            Libc.pthread_setspecific(key, before);
            return found > 0 ? found : 0;
        }

        /// <summary>The calling thread's cache, made at its first call; null for a
        /// thread whose cache is gone (exiting) or when there is no thread key.</summary>
        public static ThreadCache* CurrentCache() => CurrentCache(-1);

        /// <summary>CurrentCache, for a first call that frees a block of arena
        /// <paramref name="freedArena"/> (-1: none): a thread made then takes that arena
        /// when no live thread calls it home (see ClaimIdleArena).</summary>
        public static ThreadCache* CurrentCache(int freedArena)
        {
            ThreadCache* known = PeekCache();
            if (known != null) return known;
            if (!s_useThreadKey) return null;
            void* v = Libc.pthread_getspecific(s_threadKey);
            if (v == ThreadCaches.Exited) return null;
            if (v != null) return (ThreadCache*)v;
            return CreateCache(freedArena);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static ThreadCache* CreateCache(int freedArena)
        {
            // A NULL key is also what a thread sees after glibc cleared its keys at exit
            // (ExitedThreads): such a thread goes on without a cache, counted in the
            // shared slot, and leaves nothing behind.
            if (ExitedThreads.IsCallerTornDown()) return null;
            int index = freedArena >= 0 && ClaimIdleArena(freedArena) ? freedArena : LeastUsedArena();
            ThreadCache* tc = ThreadCaches.Create(ArenaAt(index));
            if (tc != null)
            {
                Libc.pthread_setspecific(s_threadKey, tc);
                if (FutexLock.Alone()) SoleCache.Cache = tc;
            }
            else CountThread(index, -1);
            return tc;
        }

        /// <summary>The arena that the fewest live threads call home (the lowest such index),
        /// counted for the caller. Threads that run at once get arenas of their own; a thread
        /// started after another ended takes over the arena it left, with the memory in it,
        /// as glibc's threads take over a free arena. Handing arenas out round robin spread a
        /// program that keeps replacing threads (larson) over every arena, each with regions
        /// of its own, partly used (docs/performance/memory.md).</summary>
        private static int LeastUsedArena()
        {
            fixed (int* counts = s_threadsOfArena.OfArena)
            {
                // Counted with a compare-exchange of the count just read: threads starting
                // at the same moment (larson's lanes replace their threads in step) would
                // otherwise all see the same free arena and share it. A few rounds at most.
                for (int round = 0; ; round++)
                {
                    int best = 0;
                    int fewest = Atomics.Read(&counts[0]);
                    for (int i = 1; i < s_arenaCount && fewest > 0; i++)
                    {
                        int n = Atomics.Read(&counts[i]);
                        if (n < fewest) { fewest = n; best = i; }
                    }
                    if (Interlocked.CompareExchange(ref counts[best], fewest + 1, fewest) == fewest) return best;
                    if (round == 64) { Interlocked.ExchangeAdd(ref counts[best], 1); return best; }
                }
            }
        }

        /// <summary>Claims arena <paramref name="arena"/> for the calling thread if no live thread
        /// calls it home. A thread whose first call frees a block of such an arena was handed
        /// memory that a thread before it left (a server passing a connection's blocks from one
        /// short-lived thread to the next, larson): it takes over that arena, so its frees of
        /// those blocks are frees into its own cache and heap, and its allocations reuse the
        /// memory around them. By the fewest-live rule alone, two such threads started at the
        /// same moment took each other's arenas about half the time (larson's two lanes), and
        /// from then on every inherited block was another arena's (FreeForeign, blocks of two
        /// lanes interleaved in both arenas' regions).</summary>
        private static bool ClaimIdleArena(int arena)
        {
            fixed (int* counts = s_threadsOfArena.OfArena)
                return Atomics.Read(&counts[arena]) == 0 && Interlocked.CompareExchange(ref counts[arena], 1, 0) == 0;
        }

        /// <summary>Live threads whose home arena <paramref name="arena"/> is (a plain read: a
        /// thread starting or ending meanwhile makes the answer a moment old, which only decides
        /// where a freed block is cached, never whether it is).</summary>
        public static int ThreadsAtHome(int arena)
        {
            fixed (int* counts = s_threadsOfArena.OfArena) return Atomics.Read(&counts[arena]);
        }

        private static void CountThread(int arena, int delta)
        {
            fixed (int* counts = s_threadsOfArena.OfArena) Interlocked.ExchangeAdd(ref counts[arena], delta);
        }

        /// <summary>The arena of a thread without a cache: spread by the address of its
        /// thread descriptor.</summary>
        public static Arena* FallbackArena()
        {
            ulong self = (ulong)Libc.pthread_self();
            return ArenaAt((int)(((self >> 12) * 0x9E3779B97F4A7C15) >> 40) % s_arenaCount);
        }

        /// <summary>Thread exit (the key's destructor): the cache goes back to the heap.
        /// The key is then set to Exited, so calls from later destructors still work,
        /// without a cache; glibc gives up re-running destructors after a few rounds and
        /// clears the key, so the thread is also recorded in ExitedThreads, which keeps
        /// its last calls (libc's own clean-up frees) from making a new cache.</summary>
        [UnmanagedCallersOnly]
        private static void ThreadExit(void* value)
        {
            if (value != null && value != ThreadCaches.Exited)
            {
                // The last thread of a process that exits with pthread_exit: no later call
                // (a destructor's free) may find this cache as the sole thread's.
                if (SoleCache.Cache == (ThreadCache*)value) SoleCache.Cache = null;
                // Counted out after the cache is parked, so that a thread claiming the arena
                // as idle finds the cache there (ThreadCaches.Retire).
                int home = ((ThreadCache*)value)->Home->Index;
                ThreadCaches.Retire((ThreadCache*)value);
                CountThread(home, -1);
                ExitedThreads.Record();
            }
            Libc.pthread_setspecific(s_threadKey, ThreadCaches.Exited);
        }

        /// <summary>The arena the calling thread allocates from.</summary>
        public static Arena* HomeArena()
        {
            ThreadCache* tc = CurrentCache();
            return tc != null ? tc->Home : FallbackArena();
        }

        /// <summary>A mapping failed: give back all the memory this thread can, so that
        /// one retry has the most room (docs/heap.md, "When the OS says no"). The calling
        /// thread's cached blocks go back to the heap first (they keep regions from being
        /// wholly free), then every arena returns its wholly free regions and the unused
        /// tail of its address-space reservation (unless <paramref name="keepReservations"/>:
        /// malloc_trim, where no mapping failed, leaves the heap room to grow in place). Takes
        /// each lock in turn; none may be held.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void TrimAfterFailedMapping(ThreadCache* tc, bool keepReservations = false)
        {
            if (tc != null) ThreadCaches.DrainAll(tc);
            ThreadCaches.DrainParked();
            for (int i = 0; i < s_arenaCount; i++)
            {
                Arena* a = ArenaAt(i);
                LockArena(a);
                Arenas.TrimForRetry(a, keepReservations);
                UnlockArena(a);
            }
        }

        // Taking a lock leaves the arena's remote list alone: its blocks are adopted by
        // the owner's cache refills, and go back to the heap when a search finds no fit
        // (Arenas.FindFit), so they are never stranded while memory is wanted.
        public static void LockArena(Arena* a) => FutexLock.Acquire(&a->Lock);

        /// <summary>Takes a's lock only if it is free right now.</summary>
        public static bool TryLockArena(Arena* a) => FutexLock.TryAcquire(&a->Lock);
        /// <summary>Inlined: every heap call ends with it, and without the futex wake (out of
        /// line in FutexLock) it is a countdown and an exchange.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void UnlockArena(Arena* a)
        {
            // The heap map is kept on slow paths like this one, never on a cache hit.
            if (a->MapCountdown-- <= 1) HeapMap.Tick(a); // Tick sets it again (0 after a change of regions)
            FutexLock.Release(&a->Lock);
        }

        // ---- fork: no lock may be held by a thread that will not exist in the child ----

        [UnmanagedCallersOnly]
        private static void BeforeFork()
        {
            // First: a stack walk under way may still allocate (and so need the locks below).
            Sampling.Sampler.BeforeFork();
            ThreadCaches.LockForFork();
            ExitedThreads.Lock();
            for (int i = 0; i < s_arenaCount; i++) LockArena(ArenaAt(i));
            OsMemory.LockForFork();
            StatsWriter.BeforeFork();
        }

        [UnmanagedCallersOnly]
        private static void AfterForkInParent()
        {
            StatsWriter.AfterForkInParent();
            OsMemory.UnlockAfterFork();
            for (int i = s_arenaCount - 1; i >= 0; i--) UnlockArena(ArenaAt(i));
            ExitedThreads.Unlock();
            ThreadCaches.UnlockAfterFork();
            Sampling.Sampler.AfterForkInParent();
        }

        [UnmanagedCallersOnly]
        private static void AfterForkInChild()
        {
            // Only this thread exists in the child; its cache and slot carry on, and it is
            // the sole thread's if glibc says the child has one thread (it may not: glibc
            // leaves its flag clear in the child of a process that had threads).
            ThreadCache* tc = PeekCacheOfThread();
            SoleCache.Cache = FutexLock.Alone() ? tc : null;
            Sampling.Sampler.AfterForkInChild();
            StatsWriter.AfterForkInChild(tc != null ? tc->StatsSlot : -1);
            if (tc != null)
            {
                tc->Stats = tc->StatsSlot >= 0 ? StatsWriter.ThreadSlot(tc->StatsSlot) : StatsWriter.SharedSlot;
                ThreadCaches.StartInUseCount(tc);
            }
            // Only this thread lives on: the other threads' arenas are free for the child's new threads.
            fixed (int* counts = s_threadsOfArena.OfArena)
                for (int i = 0; i < MaxArenas; i++) counts[i] = tc != null && tc->Home->Index == i ? 1 : 0;
            for (int i = 0; i < s_arenaCount; i++)
            {
                Arena* a = ArenaAt(i);
                a->Stats = StatsWriter.ArenaSlot(i);
                FutexLock.ResetAfterFork(&a->Lock);
            }
            ExitedThreads.ResetAfterForkInChild();
            OsMemory.ResetAfterForkInChild();
            ThreadCaches.ResetAfterForkInChild(tc);
        }
    }
}
