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
// This file holds the structs and the bins' push and pop (the fast paths); each
// other concern of ThreadCaches has a file of its own:
//   ThreadCache.Drain.cs   giving blocks back to the heap: sorted, joined, coalesced
//   ThreadCache.Refill.cs  filling an empty bin: remote frees first, then a carved run
//   ThreadCache.Idle.cs    bins that did not run empty between two looks: halved into the heap
//   ThreadCache.Pool.cs    making and retiring caches: the pool, thread exit, fork
//   ThreadCache.Foreign.cs small blocks of other arenas: sent home in chains, not cached
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

namespace Konfiscator.Native.Heaps
{
    /// <summary>One size's bin. 32 bytes (Size), so that two bins share a cache line and
    /// none straddles two: the bins start on a line of their own (ThreadCache.BinsOnOwnLine),
    /// and a free or malloc served by a bin touches one line of it. LayoutTests checks both.</summary>
    [StructLayout(LayoutKind.Sequential, Size = ThreadCaches.BinBytes)]
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
        /// <summary>Set when the bin ran empty (a refill) since the thread last looked at its
        /// bins (ThreadCache.Idle.cs): while it does not, some of its blocks go unused.</summary>
        public byte RanEmpty;
        /// <summary>The thread's fast-path frees into this bin when it last overflowed
        /// (ThreadCaches.FastFrees; wraps): how the bin emptied since (see Refill).</summary>
        public uint FreesAtOverflow;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct ThreadCache
    {
        public Arena* Home;          // where this thread's heap allocations go
        public ulong* Stats;         // the thread's stats slot
        public int StatsSlot;        // its index, -1 when Stats is the shared slot
        public int InSampler;        // non-zero while this thread is inside the sampler (see Heap/SampledBlocks.cs)
        public long InUseDelta;      // bytes in use not yet added to the process-wide figure
        public long GrowthLimit;     // InUseDelta at which to look at it again (StatsWriter.GrowthToLookAt)
        public long ShrinkLimit;     // InUseDelta at or below which it is reported (minus StatsWriter.InUseReportStep())
        public ThreadCache* NextFree;
        public ThreadCache* NextMade; // every cache ever made, for the fork child (ResetAfterForkInChild)
        public int CurrentCall;      // the API call the thread is in (a StatsLayout call counter), for messages
        public int Pooled;           // 1 while in the pool of released caches
        public long SampleCountdown; // requested bytes until the next sampled allocation
        public ulong SampleRandom;   // the thread's random state for the next countdown
        public long SampleTid;       // the thread's kernel id for its samples: read (gettid) at its first sample, not at each; 0 until then
        /// <summary>Header word of a plain used block of the home arena (Blocks.PlainUsedTag):
        /// the free fast path tells "mine, used, no flags" with one compare.</summary>
        public uint HomeUsedTag;
        public ushort ForeignArena;  // the arena of the blocks in the foreign chain
        public ushort ForeignCount;  // blocks in it (ThreadCache.Foreign.cs)
        /// <summary>The readable part of the home arena's address-space reservation (up to its
        /// highest region; Regions.ReadableSpanBytes), as the thread last saw it under the
        /// arena's lock (SeeSpan): the free fast path may read a header there without the
        /// page map. Null and 0 until the thread's first look.</summary>
        public byte* SpanLow;
        public nuint SpanBytes;
        public Block* ForeignHead;   // small blocks of another arena freed by this thread, linked
        public Block* ForeignTail;   //   through FreeLinks, on their way back to that arena
        /// <summary>Pads the fields above to whole cache lines (a cache is carved at a multiple
        /// of 64 bytes), so that the bins start on a line of their own.</summary>
        public fixed byte BinsOnOwnLine[ThreadCaches.PadBeforeBins];
        /// <summary>The BinCount bins (ThreadCaches.BinAt), right after the fields the fast paths
        /// read: a malloc or free served by a bin touches one page of its cache, not two. (They
        /// used to come after the arrays below, which only slow paths use, and a fork child's
        /// first call then copied both pages: docs/performance/processes.md.)</summary>
        public fixed byte Bins[ThreadCaches.BinCount * ThreadCaches.BinBytes];
        public fixed ulong Held[ThreadCaches.HeldSlots];       // freed blocks of 1-32 KiB held back from the heap, HeldPerClass a size class (ThreadCache.Classes.cs)
        public fixed ushort HeldSizes[ThreadCaches.HeldSlots]; // their sizes in units, so that a search reads no block
        public fixed byte HeldCount[ThreadCaches.HeldClasses]; // how many each class holds
        public uint HeldUnits;       // the held blocks' sizes summed
        public uint LookCountdown;   // slow paths until the next look for idle bins (ThreadCache.Idle.cs); also keeps Scratch 8-byte aligned
        public fixed ulong Scratch[ThreadCaches.ScratchBlocks]; // Drain sorts blocks here
        public fixed ulong SampleFrames[Konfiscator.Stats.SampleLayout.MaxFrames]; // a sampled call's stack
    }

    internal static unsafe partial class ThreadCaches
    {
        public const uint MinUnits = Blocks.MinUnits;          // 32-byte blocks
        /// <summary>The bins, all served by the fast paths: requests up to 1 032 bytes, blocks up to
        /// 1 040 bytes. Larger blocks a thread frees, up to 32 KiB, are held blocks
        /// (ThreadCache.Classes.cs). Requests of 1-2 KiB had bins of their own until issue 9's
        /// eighth round, 64 of them, two or three blocks each: a working set of random sizes
        /// parked most of their 215 KiB (a bin of a size asked for now and then keeps what it
        /// got), where the held blocks' budget is 32 KiB in a small program
        /// (docs/performance/memory.md).</summary>
        public const int BinCount = 64;
        /// <summary>The largest cached block (1 040 bytes): the last bin's.</summary>
        public const uint MaxUnits = MinUnits + BinCount - 1;
        // The stats slots count the fast paths' calls per bin (StatsLayout.FromFastCounts): the
        // same bins, or this does not compile.
        private const byte BinsMatchStatsLayout = BinCount == StatsLayout.CacheBins && MinUnits == 2 ? 0 : 256;
        /// <summary>Largest request served from the cache: its block is MaxUnits.</summary>
        public const nuint MaxRequest = (MaxUnits << Blocks.UnitShift) - Blocks.Overhead;

        /// <summary>8-byte classes of requests up to MaxRequest: class c holds 8c - 7 .. 8c bytes,
        /// all of them in one bin (a bin's requests are 16k + 9 .. 16k + 24 bytes, bin 0's 1..24).</summary>
        public const int RequestClasses = (int)((MaxRequest + 7) >> 3) + 1;

        /// <summary>The bin of requests of class <paramref name="cls"/> ((size + 7) / 8, for sizes
        /// 1..MaxRequest): (max(cls, 2) - 2) / 2, bin 0 taking classes 1 to 3. Arithmetic, no
        /// load: a table here put two dependent loads before the bin's, and bignum's loop took
        /// 3% longer with fewer instructions (15 interleaved runs).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nuint BinOfClass(nuint cls)
        {
            if (cls < 2) cls = 2;   // a conditional move
            return (cls - 2) >> 1;
        }

        /// <summary>What a bin holds at first: 8 KiB (8 to 128 blocks). Refills carve from
        /// the same budget (half of it at most, see Refill).</summary>
        private const uint StartBytes = 8192, MinCapacity = 8, StartMaxBlocks = 128;
        /// <summary>What a bin may grow to: 2 MiB (up to 32 768 blocks). A bin that overflows
        /// gives half its blocks back (sorted, joined, coalesced) and is refilled from the
        /// index later; when that happens (an overflow, then a refill) the program frees
        /// and allocates this size in batches larger than the bin, and each such round
        /// trip through the heap doubles the bin, so batches of tens of thousands of blocks
        /// soon come and go without the heap (small FIFO's 100 000-block batches: 1.61 G
        /// instructions with bins of at most 64 KiB, 1.21 G now, glibc 1.33 G; peak RSS
        /// the same, since the blocks of a batch are live at its peak anyway). A thread that only frees a size (a consumer of
        /// another thread's blocks) never refills it, so its bin stays small and the
        /// blocks go back to their arena.</summary>
        private const uint MaxBytes = 2 << 20, MaxBlocks = 32768;
        public const int ScratchBlocks = 128;
        /// <summary>sizeof(Bin): a divisor of a cache line, so no bin straddles two.</summary>
        public const int BinBytes = 32;
        /// <summary>The bytes of ThreadCache's fields before BinsOnOwnLine: twenty-one scalar fields
        /// (with the 4 bytes of padding before SpanLow). A field added above the bins must be
        /// counted here; LayoutTests fails (through konfiscator_debug_layout) when the bins
        /// leave their line or are not where BinsOffset says.</summary>
        private const int BytesBeforeBins = 136;
        public const int PadBeforeBins = 64 - BytesBeforeBins % 64;
        /// <summary>Where ThreadCache.Bins starts (LayoutTests checks it against the field). The bins
        /// are reached by this offset, not through the field: taking a field's address through a
        /// pointer costs the compiler's null check, a load on every call.</summary>
        private const int BinsOffset = BytesBeforeBins + PadBeforeBins;

        /// <summary>Value of the thread key for a thread whose cache was already torn
        /// down at exit: it keeps working, without a cache.</summary>
        public static readonly void* Exited = (void*)1;

        private static bool s_enabled;

        public static bool Enabled => s_enabled;

        public static void Initialize(bool enabled) => s_enabled = enabled;

        /// <summary>Adds to a counter of the thread's slot (or the shared slot, atomically,
        /// for a thread without one): the thread caches' figures, off the fast paths.
        /// (What each API call adds is Api/Counting.cs.) Inlined, a plain add for a thread
        /// with a slot and the shared slot's atomic out of line: called, it was 18 instructions
        /// on the paths that take a block from a bin past the fast path, a tenth of a calloc's
        /// or an aligned request's (callgrind, docs/performance/small-objects.md).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Count(ThreadCache* tc, int counter, long delta)
        {
            if (tc != null && tc->StatsSlot >= 0) tc->Stats[counter] += (ulong)delta;
            else CountShared(counter, delta);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void CountShared(int counter, long delta) => Atomics.Add(&StatsWriter.SharedSlot[counter], delta);

        /// <summary>Frees the fast path put into bin <paramref name="index"/> so far, as the
        /// thread's stats slot counts them; wraps.</summary>
        public static uint FastFrees(ThreadCache* tc, nuint index) =>
            (uint)tc->Stats[StatsLayout.BinFreesFirst + (int)index];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Bin* BinFor(ThreadCache* tc, uint units) => BinAt(tc, units - MinUnits);

        /// <summary>The bin at <paramref name="index"/> (units - MinUnits, below BinCount).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Bin* BinAt(ThreadCache* tc, nuint index) =>
            (Bin*)((byte*)tc + BinsOffset) + index;

        /// <summary>With home arena a's lock held: the thread's copy of a's reservation, for the
        /// free fast path's range test (Api/Exports.cs). Taken under the lock because a
        /// reservation's tail is given up under it (ShrinkSpans), and a copy taken outside
        /// could bring back a range that is no longer ours.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SeeSpan(ThreadCache* tc, Arena* a)
        {
            tc->SpanLow = a->SpanBase;
            tc->SpanBytes = s_spanReadsStopped ? 0 : Regions.ReadableSpanBytes(a);
        }

        /// <summary>Set once a region given back could not be made readable (StopSpanReads).</summary>
        private static bool s_spanReadsStopped;

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

    }
}
