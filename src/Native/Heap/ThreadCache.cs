// Per-thread caches of exact size classes in front of the heap, the way glibc's
// tcache fronts its bins: a cache, not a new policy. A freed small block parks
// in its thread's bin for its exact size (in 16-byte units); a malloc of that
// size takes it back with no lock and no system call. Bins are bounded, filled
// from the heap by first fit in batches, emptied back into the heap (with
// coalescing) when full, and returned whole when the thread exits.
//
// A cached block stays "in use" as far as the heap is concerned (so it is never
// merged), with its header state set to Cached, so that freeing it again is
// still caught as a double free.
//
// Each thread's cache also holds the thread's own stats slot, so counting a call
// is a few plain stores to a cache line no other thread writes.
//
// KONFISCATOR_TCACHE=0 turns caching off (every call goes to the heap): the
// placement is then exactly docs/heap.md's first fit, which the model test checks.
//
// Whatever replaces this front end must keep three protections (issue 8):
//   - links kept in freed memory are stored and read through FreeLinks (mangled
//     with the process's secret, checked before they are followed);
//   - a thread gets no new cache once its key destructor ran (ExitedThreads), and
//     free(NULL) makes nothing;
//   - in a fork child, caches of the parent's other threads never count into the
//     parent's stats mapping (ResetAfterForkInChild).

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using System.Threading;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heap
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Bin
    {
        public Block* Head;        // singly linked through the first payload word, mangled (FreeLinks)
        public uint Count;
        public ushort Capacity;
        /// <summary>Most blocks one refill carves (see Refill).</summary>
        public ushort RefillMax;
        /// <summary>Refills from the heap so far, up to the one that reached a full batch (see Refill).</summary>
        public byte Refills;
        /// <summary>Set when the bin overflowed (gave blocks back) since its last refill.</summary>
        public byte Overflowed;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct ThreadCache
    {
        public Arena* Home;          // where this thread's heap allocations go
        public ulong* Stats;         // the thread's stats slot
        public int StatsSlot;        // its index, -1 when Stats is the shared slot
        public int InSampler;        // non-zero while this thread is inside the sampler (see Sampling/Sampler.cs)
        public long InUseDelta;      // bytes in use not yet added to the process-wide figure
        public long GrowthLimit;     // InUseDelta at which to look at it again (StatsWriter.GrowthToLookAt)
        public ThreadCache* NextFree;
        public ThreadCache* NextMade; // every cache ever made, for the fork child (ResetAfterForkInChild)
        public int CurrentCall;      // the API call the thread is in (a StatsLayout call counter), for messages
        public int Pooled;           // 1 while in the pool of released caches
        public long SampleCountdown; // requested bytes until the next sampled allocation
        public ulong SampleRandom;   // the thread's random state for the next countdown
        public fixed ulong Scratch[ThreadCaches.ScratchBlocks]; // Drain sorts blocks here
        public fixed ulong SampleFrames[Konfiscator.Stats.SampleLayout.MaxFrames]; // a sampled call's stack
        public Bin FirstBin;         // BinCount bins follow, FirstBin being bins[0]
    }

    internal static unsafe class ThreadCaches
    {
        public const uint MinUnits = Blocks.MinUnits;          // 32-byte blocks
        public const uint MaxUnits = 65;                        // requests up to 1 KiB
        public const int BinCount = (int)(MaxUnits - MinUnits + 1);
        // The stats slots count the fast paths' calls per bin (StatsLayout.FromFastCounts): the
        // same bins, or this does not compile.
        private const byte BinsMatchStatsLayout = BinCount == StatsLayout.CacheBins && MinUnits == 2 ? 0 : 256;
        /// <summary>Largest request served from the cache: its block is MaxUnits.</summary>
        public const nuint MaxRequest = (MaxUnits << Blocks.UnitShift) - Blocks.HeaderBytes;
        /// <summary>What a bin holds at first: 8 KiB (8 to 128 blocks). Refills carve from
        /// the same budget (half of it at most, see Refill).</summary>
        private const uint StartBytes = 8192, MinCapacity = 8, StartMaxBlocks = 128;
        /// <summary>What a bin may grow to: 64 KiB (up to 2048 blocks). A bin that overflows
        /// gives half its blocks back (sorted, joined, coalesced) and is refilled from the
        /// index later; when that happens (an overflow, then a refill) the program frees
        /// and allocates this size in batches larger than the bin, and each such round
        /// trip through the heap doubles the bin, so batches of a few thousand blocks soon
        /// come and go without the heap. A thread that only frees a size (a consumer of
        /// another thread's blocks) never refills it, so its bin stays small and the
        /// blocks go back to their arena.</summary>
        private const uint MaxBytes = 65536, MaxBlocks = 2048;
        public const int ScratchBlocks = 128;

        private static int StructBytes => ((sizeof(ThreadCache) - sizeof(Bin) + BinCount * sizeof(Bin) + 63) / 64) * 64;

        /// <summary>Value of the thread key for a thread whose cache was already torn
        /// down at exit: it keeps working, without a cache.</summary>
        public static readonly void* Exited = (void*)1;

        private static bool s_enabled;
        private static int s_poolLock;
        private static ThreadCache* s_pool;      // released caches, for new threads
        private static ThreadCache* s_made;      // every cache ever made (NextMade)
        private static byte* s_chunk;            // where new caches are carved from
        private static nuint s_chunkLeft;

        public static bool Enabled => s_enabled;

        public static void Initialize(bool enabled) => s_enabled = enabled;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Bin* BinFor(ThreadCache* tc, uint units) => &tc->FirstBin + (units - MinUnits);

        /// <summary>The bin at <paramref name="index"/> (units - MinUnits, below BinCount).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Bin* BinAt(ThreadCache* tc, nuint index) =>
            (Bin*)((byte*)tc + (sizeof(ThreadCache) - sizeof(Bin))) + index;   // FirstBin is the last field

        /// <summary>Takes the most recently parked block of a bin of <paramref name="units"/>;
        /// null when it is empty. The link to the next one lives in freed memory, so it is
        /// checked (FreeLinks), and so is the block's header: Cached, of the bin's size.
        /// <paramref name="call"/> names the API call in the message if a check fails.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Pop(Bin* bin, uint units, int call)
        {
            Block* b = bin->Head;
            if (b == null) return null;
            // Its state is enough here: it came from a checked link (or a push), and only
            // a forged link could name a Cached block of another size.
            FreeLinks.CheckCached(b, call);
            bin->Head = FreeLinks.Next(b, call);
            bin->Count--;
            Blocks.SetState(b, Blocks.Used);
            return b;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Push(Bin* bin, Block* b)
        {
            Blocks.SetState(b, Blocks.Cached);
            Link(bin, b);
        }

        /// <summary>Puts a block that is already Cached on top of a bin.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Link(Bin* bin, Block* b)
        {
            FreeLinks.SetNext(b, bin->Head);
            bin->Head = b;
            bin->Count++;
        }

        // ---- creation and exit ----

        /// <summary>A new cache for the calling thread (the caller stores it in the thread key).</summary>
        public static ThreadCache* Create(Arena* home)
        {
            ThreadCache* tc = TakeFromPool();
            if (tc == null) return null;
            tc->Home = home;
            tc->InUseDelta = 0;
            tc->GrowthLimit = StatsWriter.PeakQuantumFloor;
            tc->NextFree = null;
            tc->InSampler = 0;
            Sampling.Sampler.StartThread(tc);
            tc->StatsSlot = StatsWriter.ClaimThreadSlot();
            tc->Stats = tc->StatsSlot >= 0 ? StatsWriter.ThreadSlot(tc->StatsSlot) : StatsWriter.SharedSlot;
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
            }
            return tc;
        }

        /// <summary>Every cached block back to the heap (thread exit, and a failed mapping:
        /// cached blocks would keep their regions from going back to the OS).</summary>
        public static void DrainAll(ThreadCache* tc)
        {
            for (uint units = MinUnits; units <= MaxUnits; units++)
                Drain(tc, BinFor(tc, units), 0xFFFFFFFF);
        }

        /// <summary>At thread exit: every cached block back to the heap, the slot and the cache to their pools.</summary>
        public static void Destroy(ThreadCache* tc)
        {
            DrainAll(tc);
            StatsWriter.FlushInUse(tc);
            if (tc->StatsSlot >= 0) StatsWriter.ReleaseThreadSlot(tc->StatsSlot);
            LockPool();
            tc->NextFree = s_pool;
            tc->Pooled = 1;
            s_pool = tc;
            UnlockPool();
        }

        /// <summary>Returns up to <paramref name="count"/> blocks of a bin: those of other
        /// arenas onto their remote lists, where their owners pick them up (see Refill),
        /// those of the thread's home arena into its heap, under one lock, in address
        /// order, and with runs of neighbouring blocks joined before they reach the
        /// index (a bin returns its blocks newest first, which would otherwise make every
        /// one of them merge with its upper neighbour, the index's dearest case).</summary>
        public static void Drain(ThreadCache* tc, Bin* bin, uint count)
        {
            Arena* home = tc->Home;
            ulong* sorted = tc->Scratch;
            int n = 0;
            ulong returnedBytes = 0;
            long returned = 0;
            // Consecutive blocks of one other arena go over as one chain (one CAS).
            Arena* chainArena = null;
            Block* chainHead = null, chainTail = null;
            uint units = (uint)(bin - &tc->FirstBin) + MinUnits;
            int call = tc->CurrentCall;
            while (count-- > 0 && bin->Head != null)
            {
                Block* b = bin->Head;
                if (b->SizeUnits != units) FreeLinks.Corrupted(call, b);
                FreeLinks.CheckCached(b, call);
                bin->Head = FreeLinks.Next(b, call);
                bin->Count--;
                Arena* a = Heap.ArenaAt(b->Arena);
                if (a == home)
                {
                    returnedBytes += Blocks.Bytes(b);
                    returned++;
                    sorted[n++] = (ulong)b;
                    if (n == ScratchBlocks) { ReleaseSorted(home, sorted, n); n = 0; }
                    continue;
                }
                if (a != chainArena)
                {
                    if (chainHead != null) Arenas.PushRemoteChain(chainArena, chainHead, chainTail);
                    chainArena = a;
                    chainHead = null;
                }
                FreeLinks.SetNext(b, null);
                if (chainHead == null) chainHead = b; else FreeLinks.SetNext(chainTail, b);
                chainTail = b;
            }
            if (chainHead != null) Arenas.PushRemoteChain(chainArena, chainHead, chainTail);
            if (n > 0) ReleaseSorted(home, sorted, n);
            Returned(tc, returnedBytes, returned);
        }

        /// <summary>Counts blocks a cache gave back to the heap.</summary>
        private static void Returned(ThreadCache* tc, ulong bytes, long blocks)
        {
            if (blocks == 0) return;
            Konfiscator.Native.Api.Counting.Add(tc, StatsLayout.CachedBytes, -(long)bytes);
            Konfiscator.Native.Api.Counting.Add(tc, StatsLayout.CacheReturnBlocks, blocks);
        }

        /// <summary>Sorts n Cached blocks of arena a by address, joins physical runs, and
        /// frees each run into the heap under one lock.</summary>
        private static void ReleaseSorted(Arena* a, ulong* blocks, int n)
        {
            Heap.LockArena(a);
            ReleaseSortedLocked(a, blocks, n);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
        }

        /// <summary>Below this many cached bytes a thread keeps its blocks even when its
        /// heap is about to grow (ReturnCachedLocked): not worth a pass over the bins.</summary>
        private const ulong ReturnMinBytes = 64 << 10;

        /// <summary>With home arena a's lock held, when a search found no fit there and a
        /// region is about to be mapped: the calling thread's cached blocks of that arena
        /// go back into the heap (sorted, joined, coalesced), so that big bins never make
        /// the heap grow. True when any went back.</summary>
        public static bool ReturnCachedLocked(Arena* a)
        {
            ThreadCache* tc = Heap.PeekCache();
            if (tc == null || tc->Home != a || !s_enabled) return false;
            ulong held = 0;
            for (uint units = MinUnits; units <= MaxUnits; units++)
                held += (ulong)BinFor(tc, units)->Count * (units << Blocks.UnitShift);
            if (held < ReturnMinBytes) return false;
            ulong* sorted = tc->Scratch;
            bool any = false;
            ulong returnedBytes = 0;
            long returned = 0;
            int call = tc->CurrentCall;
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                Block* keep = null;   // blocks of other arenas stay cached
                uint kept = 0;
                int n = 0;
                while (bin->Head != null)
                {
                    Block* b = bin->Head;
                    if (b->SizeUnits != units) FreeLinks.Corrupted(call, b);
                    FreeLinks.CheckCached(b, call);
                    bin->Head = FreeLinks.Next(b, call);
                    bin->Count--;
                    if (b->Arena != a->Index)
                    {
                        FreeLinks.SetNext(b, keep);
                        keep = b;
                        kept++;
                        continue;
                    }
                    sorted[n++] = (ulong)b;
                    if (n == ScratchBlocks) { ReleaseSortedLocked(a, sorted, n); n = 0; }
                    any = true;
                    returnedBytes += Blocks.Bytes(b);
                    returned++;
                }
                if (n > 0) ReleaseSortedLocked(a, sorted, n);
                bin->Head = keep;
                bin->Count = kept;
            }
            Returned(tc, returnedBytes, returned);
            return any;
        }

        private static void ReleaseSortedLocked(Arena* a, ulong* blocks, int n)
        {
            SortAddresses(blocks, n);
            ulong* s = a->Stats;
            int start = 0;
            while (start < n)
            {
                Block* run = (Block*)blocks[start];
                uint units = run->SizeUnits;
                int next = start + 1;
                // Join the blocks that follow run directly in memory: they become its
                // payload, so no header of theirs may survive (Retire), and each join is
                // a coalesce like any other.
                while (next < n && (Block*)blocks[next] == (Block*)((byte*)run + ((nuint)units << Blocks.UnitShift)))
                {
                    Block* joined = (Block*)blocks[next];
                    units += joined->SizeUnits;
                    Blocks.Retire(joined);
                    s[StatsLayout.Coalesces]++;
                    next++;
                }
                if (units != run->SizeUnits)
                {
                    Blocks.Set(run, units, a->Index, Blocks.Used);
                    Blocks.SetPrev(Blocks.Next(run), units, free: false);
                }
                Blocks.SetState(run, Blocks.Used);
                Arenas.Release(a, run);
                start = next;
            }
        }

        /// <summary>Sorts n (at most ScratchBlocks) addresses, ascending. A bin often hands
        /// its blocks back in exactly ascending or descending address order (a size freed
        /// in the order it was carved, or the reverse): one pass finds out, and those take
        /// O(n). Anything else gets a Shell sort with Ciura's gaps (a plain insertion sort
        /// would take up to n²/2 moves).</summary>
        private static void SortAddresses(ulong* a, int n)
        {
            bool ascending = true, descending = true;
            for (int i = 1; i < n; i++)
            {
                if (a[i - 1] > a[i]) ascending = false;
                else descending = false;
            }
            if (ascending) return;
            if (descending)
            {
                for (int i = 0, j = n - 1; i < j; i++, j--) { ulong t = a[i]; a[i] = a[j]; a[j] = t; }
                return;
            }
            for (int g = 0; g < 5; g++)
            {
                int gap = g == 0 ? 57 : g == 1 ? 23 : g == 2 ? 10 : g == 3 ? 4 : 1;
                for (int i = gap; i < n; i++)
                {
                    ulong key = a[i];
                    int j = i;
                    while (j >= gap && a[j - gap] > key) { a[j] = a[j - gap]; j -= gap; }
                    a[j] = key;
                }
            }
        }

        /// <summary>Serves a request of <paramref name="units"/> for an empty bin. First from
        /// blocks other threads freed back to the home arena (adopted into this cache's
        /// bins while they have room), else from the heap: the bin is filled with up to
        /// half its refill budget more (fewer on its first refills), all carved by first fit
        /// from one free block. Returns
        /// the caller's block (Used), or null when the heap has no memory.</summary>
        public static Block* Refill(ThreadCache* tc, Bin* bin, uint units)
        {
            Arena* a = tc->Home;
            Block* spill = Atomics.Read((ulong*)&a->Remote) != 0 ? AdoptRemote(tc, a) : null;
            Block* mine = Pop(bin, units, tc->CurrentCall);
            if (mine != null) Konfiscator.Native.Api.Counting.Add(tc, StatsLayout.CachedBytes, -(long)Blocks.Bytes(mine));
            if (mine != null && spill == null) return mine;

            Heap.LockArena(a);
            Arenas.ReleaseChain(a, spill);
            if (mine != null)
            {
                Arenas.PublishLargest(a);
                Heap.UnlockArena(a);
                return mine;
            }
            // Slow start: a bin's first refill carves two blocks, each later one twice
            // as many, up to half its refill budget. A size a program asks for once or twice
            // then does not carve (and fault in) a batch it will never use, which is
            // most sizes in a short-lived process; a hot size reaches full batches
            // after a handful of refills.
            if (bin->Overflowed != 0)
            {
                bin->Overflowed = 0;
                uint most = MostBlocks(units);
                uint grown = (uint)bin->Capacity * 2;
                bin->Capacity = (ushort)(grown < most ? grown : most);
            }
            uint want = 1 + (uint)bin->RefillMax / 2;
            uint ramp = 2u << bin->Refills;
            if (ramp < want)
            {
                want = ramp;
                bin->Refills++;
            }
            Block* b = Arenas.FindFit(a, units);
            if (b == null)
            {
                Heap.UnlockArena(a);
                return null;
            }
            // The lowest fitting block stays the lowest fitting block while it is cut
            // from the bottom, so carving several blocks from it at once gives exactly
            // the addresses that as many first-fit requests would.
            uint fits = b->SizeUnits / units;
            uint count = fits < want ? fits : want;
            // A rest of one unit cannot be a block; leave a bigger rest instead.
            if (count > 1 && b->SizeUnits - count * units == 1) count--;
            Block* top = Arenas.TakeRun(a, b, units, count);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
            // Pieces lie above the caller's, in the order first-fit requests would get
            // them: push the farthest first so the nearest comes out first.
            for (uint k = count - 1; k > 0; k--)
            {
                Link(bin, (Block*)((byte*)top + ((nuint)(k * units) << Blocks.UnitShift)));
            }
            if (count > 1)
            {
                Konfiscator.Native.Api.Counting.Add(tc, StatsLayout.CachedBytes, (long)(count - 1) * ((long)units << Blocks.UnitShift));
                Konfiscator.Native.Api.Counting.Add(tc, StatsLayout.CacheRefillBlocks, count - 1);
            }
            return top;
        }

        /// <summary>The most blocks a bin of <paramref name="units"/> may grow to.</summary>
        private static uint MostBlocks(uint units)
        {
            uint most = MaxBytes / (units << Blocks.UnitShift);
            return most < MinCapacity ? MinCapacity : most > MaxBlocks ? MaxBlocks : most;
        }

        /// <summary>Takes the home arena's remote list whole (one atomic exchange) and
        /// parks each block in this cache's bin for its size while there is room; returns
        /// the rest, still Cached, linked, for the caller to free into the heap.</summary>
        private static Block* AdoptRemote(ThreadCache* tc, Arena* a)
        {
            Block* b = (Block*)Interlocked.Exchange(ref *(long*)&a->Remote, 0);
            Block* spill = null;
            int call = tc->CurrentCall;
            while (b != null)
            {
                FreeLinks.CheckCached(b, call);
                Block* next = FreeLinks.Next(b, call);
                uint units = b->SizeUnits;
                Bin* bin = units <= MaxUnits ? BinFor(tc, units) : null;
                if (bin != null && bin->Count < MostBlocks(units))
                {
                    // The owner takes its blocks back to allocate them again (a producer
                    // whose consumer frees them): its bin grows to hold them, up to the
                    // most a bin may hold, rather than freeing them into the heap only to
                    // carve them out again.
                    Link(bin, b);
                    if (bin->Count > bin->Capacity) bin->Capacity = (ushort)bin->Count;
                }
                else
                {
                    FreeLinks.SetNext(b, spill);
                    spill = b;
                }
                b = next;
            }
            return spill;
        }

        // ---- the pool of cache structures ----

        private static void LockPool() { fixed (int* w = &s_poolLock) FutexLock.Acquire(w); }
        private static void UnlockPool() { fixed (int* w = &s_poolLock) FutexLock.Release(w); }
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
            fixed (int* w = &s_poolLock) FutexLock.ResetAfterFork(w);
            for (ThreadCache* tc = s_made; tc != null; tc = tc->NextMade)
            {
                if (tc == survivor || tc->Pooled != 0) continue;
                tc->StatsSlot = -1;
                tc->Stats = StatsWriter.SharedSlot;
                tc->InUseDelta = 0;
                tc->GrowthLimit = StatsWriter.PeakQuantumFloor;
            }
        }

        private static ThreadCache* TakeFromPool()
        {
            LockPool();
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
                    s_chunk = OsMemory.Map(chunkBytes);
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
