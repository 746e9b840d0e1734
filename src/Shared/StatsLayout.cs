// The binary layout of a per-process stats segment.
//
// This one file is compiled into both sides: the writer inside libkonfiscator.so
// (against the library's minimal system module) and the reader in the
// konfiscator tool (against the real base library). So it holds only constants
// and plain arithmetic that both can compile.
//
// File: <stats dir>/<pid>.kstats, created O_EXCL|O_NOFOLLOW, mode 0600, mapped shared.
//
//   offset 0      Header (HeaderSize bytes), fields at the offsets below
//   HeaderSize    Slot 0: process-wide figures (mappings, peak)
//   then          ArenaSlots slots: one per arena (heap gauges, coalesces), under the arena's lock
//   then          1 shared slot: calls of threads that have no slot of their own (atomic adds)
//   then          ThreadSlots thread slots (ThreadSlotSize each: the figures, then the fast
//                 paths' counts): one per live thread (its calls and bytes), written
//                 only by that thread, with plain stores, no lock
//
// Every counter is a little-endian 64-bit integer at an 8-byte aligned offset.
// Each slot starts on its own cache line, so no two writers share a line.
// Readers add up the slots without ever blocking the process. What each counter
// is (counter or gauge, per slot or process-wide, how slots and processes merge,
// its metric name) is the one table in StatsSchema.cs.
// A slot of a thread that exits is handed to the next new thread *without*
// being reset, so sums never go down. A reader can see a torn *set* of counters
// (one updated, the next not yet), never a torn single counter.
//
// Calls of the thread caches' fast paths are counted once, by size class: a
// thread slot (larger than the others) holds, after the figures, how many mallocs
// the fast path served by request size (1..16 bytes one by one, SmallMallocsFirst,
// since they span five histogram buckets; above, by eighths of 8 bytes' width,
// HalfClassMallocsFirst) and how many frees each bin took (BinFreesFirst). Every
// block of bin k has the same usable size, each class of requests lies in one bin
// and in one histogram bucket, so calls, bytes allocated and freed, bytes in use,
// cached bytes and the histogram follow from those counts exactly: a reader adds
// FromFastCounts(figure, ...) to each figure's sum. The fast paths then make one
// store for their figures instead of six. (A bin's requests, 16k + 9 .. 16k + 24
// bytes, can straddle a power of two, so a count per bin would not do.)

namespace Konfiscator.Stats
{
    internal static class StatsLayout
    {
        /// <summary>"KNFSTATS" read as a little-endian 64-bit integer.</summary>
        public const ulong Magic = 0x5354415453464E4B;
        public const uint Version = 3;   // 2: per-bin counts of the fast paths in every slot; 3: the mallocs by 8-byte classes (8-byte block overhead)

        public const int HeaderSize = 256;
        public const int CacheLine = 64;

        // Header fields (byte offsets).
        public const int OffMagic = 0;          // u64  Magic
        public const int OffVersion = 8;        // u32  Version
        public const int OffHeaderSize = 12;    // u32  HeaderSize
        public const int OffSlotSize = 16;      // u32  SlotSize
        public const int OffSlotCount = 20;     // u32  number of slots, all kinds
        public const int OffPid = 24;           // i32  process id
        public const int OffFlags = 28;         // u32  FlagFinal once this image of the process is over (exec)
        public const int OffStartTime = 32;     // u64  process start time, clock ticks after boot (/proc/PID/stat field 22)
        public const int OffExecGeneration = 40;// u32  0 for the first image of the pid; +1 for each exec
        public const int OffParentPid = 44;     // i32  parent pid at start (informational)
        public const int OffArenaSlots = 48;    // u32  number of arena slots
        public const int OffThreadSlots = 52;   // u32  number of thread slots
        public const int OffThreadSlotsUsed = 56; // u32  thread slots ever handed out (a reader may stop there)
        public const int OffCommand = 64;       // 64 bytes, NUL-padded: the command name (/proc/self/comm)
        public const int CommandBytes = 64;

        public const uint FlagFinal = 1;

        // Counters within a slot (index of a u64). Kind, scope and merge rule of each:
        // StatsSchema.cs (in slot 0, only the process-wide ones are used).
        public const int MallocCalls = 0;
        public const int FreeCalls = 1;            // free() and cfree(), NULL included
        public const int CallocCalls = 2;
        public const int ReallocCalls = 3;
        public const int ReallocarrayCalls = 4;
        public const int MemalignCalls = 5;
        public const int PosixMemalignCalls = 6;
        public const int AlignedAllocCalls = 7;
        public const int VallocCalls = 8;
        public const int PvallocCalls = 9;
        public const int UsableSizeCalls = 10;     // malloc_usable_size()
        public const int CfreeCalls = 11;          // (also counted in FreeCalls)
        public const int FailedAllocations = 12;   // calls that returned NULL/ENOMEM
        public const int BytesAllocated = 13;      // usable bytes handed out
        public const int BytesFreed = 14;          // usable bytes given back
        public const int BytesInUse = 15;          // usable bytes live now (wrapping per slot: a thread may free what another allocated)
        public const int Coalesces = 16;           // free blocks merged with a neighbour ("defrag")
        public const int FreeBytes = 17;           // bytes in free blocks of the arena's regions
        public const int FreeBlocks = 18;          // number of free blocks
        public const int LargestFreeBlock = 19;    // size of the largest free block
        public const int MmapCalls = 20;           // mmap/mremap calls that mapped memory
        public const int MunmapCalls = 21;
        public const int BytesMapped = 22;         // bytes currently mapped from the OS
        public const int PeakBytesInUse = 23;      // highest process-wide BytesInUse seen
        public const int ProcessBytesInUse = 24;   // process-wide BytesInUse (for the peak)
        public const int RequestSizeSum = 25;      // sum of requested sizes (histogram _sum)
        public const int CachedBytes = 26;         // bytes of blocks held by thread caches (and on their way back
                                                   //    to their arena): in use to the heap, free to the program (wrapping per slot)
        public const int CacheRefillBlocks = 27;   // blocks the thread caches took from the heap
        public const int CacheReturnBlocks = 28;   // blocks the thread caches gave back to the heap

        /// <summary>Histogram of requested sizes: bucket i counts requests of at most 2^i bytes
        /// (i = 0..HistogramBuckets-2); the last bucket counts everything larger. Not cumulative.</summary>
        public const int HistogramFirst = 32;
        public const int HistogramBuckets = 34;    // le=1,2,4,…,2^32, +Inf

        /// <summary>The figures of a slot (a reader's merged figures have this many).</summary>
        public const int CountersPerSlot = HistogramFirst + HistogramBuckets; // 66

        /// <summary>Size classes of the thread caches: bin k holds blocks of (k + 2) * 16 bytes,
        /// (k + 1) * 16 + 8 usable, for requests of k * 16 + 9 up to k * 16 + 24 bytes (bin 0:
        /// 1 to 24).</summary>
        public const int CacheBins = 64;
        /// <summary>The requests counted one by one: 1..16 bytes.</summary>
        public const int SmallRequests = 16;
        /// <summary>The fast paths' counts (all C), after the figures.</summary>
        public const int FastCountsFirst = CountersPerSlot;
        /// <summary>Mallocs of j + 1 bytes (j &lt; SmallRequests) served from bin 0 by the fast path.</summary>
        public const int SmallMallocsFirst = FastCountsFirst;
        /// <summary>Mallocs the fast path served of 8h - 7 .. 8h bytes, h = j + 3 (17 bytes and
        /// up): class j lies in bin (j + 1) / 2, and in the histogram bucket of 8h.</summary>
        public const int HalfClassMallocsFirst = SmallMallocsFirst + SmallRequests;
        public const int HalfClasses = 2 * CacheBins - 1;
        /// <summary>Frees the fast path parked in bin k (CacheBins counters).</summary>
        public const int BinFreesFirst = HalfClassMallocsFirst + HalfClasses;
        public const int FastCounts = BinFreesFirst + CacheBins - FastCountsFirst; // 207
        /// <summary>Every counter of a thread slot: the figures, then the fast paths' counts.</summary>
        public const int CountersInThreadSlot = FastCountsFirst + FastCounts; // 273
        /// <summary>The process, arena and shared slots: the figures.</summary>
        public const int SlotSize = ((CountersPerSlot * 8 + CacheLine - 1) / CacheLine) * CacheLine; // 576
        /// <summary>Thread slots: the figures and the fast paths' counts (implied by the version).</summary>
        public const int ThreadSlotSize = ((CountersInThreadSlot * 8 + CacheLine - 1) / CacheLine) * CacheLine; // 2240

        /// <summary>Usable bytes of every block of bin <paramref name="bin"/>.</summary>
        public static ulong BinUsableBytes(int bin) => (ulong)bin * 16 + 24;

        /// <summary>The counter of a fast-path malloc of <paramref name="requested"/> bytes
        /// (1 .. the largest bin's), whose 8-byte class (requested + 7) / 8 is <paramref name="cls"/>:
        /// one by one up to 16 bytes, then by class.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static nuint FastMallocCounter(nuint requested, nuint cls)
        {
            // Both computed, one chosen by a conditional move: a mix of small sizes would
            // mispredict a branch on every other malloc (callgrind's branch simulation, the
            // working set: 296 000 of 598 000 with a branch on bin 0).
            nuint counter = (nuint)SmallMallocsFirst - 1 + requested;
            nuint byClass = (nuint)HalfClassMallocsFirst - 3 + cls;
            if (requested > SmallRequests) counter = byClass;
            return counter;
        }

        /// <summary>What the fast paths' counts add to figure <paramref name="counter"/>:
        /// <paramref name="counts"/> points at the FastCounts counts of one slot (its
        /// FastCountsFirst), or at their sums over slots (every figure here is linear in
        /// them). Wrapping arithmetic, like the figures themselves.</summary>
        public static unsafe ulong FromFastCounts(int counter, ulong* counts)
        {
            ulong* small = counts + (SmallMallocsFirst - FastCountsFirst);
            ulong* classes = counts + (HalfClassMallocsFirst - FastCountsFirst);
            ulong* frees = counts + (BinFreesFirst - FastCountsFirst);
            ulong sum = 0;
            unchecked
            {
                for (int k = 0; k < CacheBins; k++)
                {
                    ulong m = 0, f = frees[k], usable = BinUsableBytes(k);
                    if (k == 0)
                    {
                        for (int j = 0; j < SmallRequests; j++)
                        {
                            m += small[j];
                            if (counter == HistogramFirst + HistogramBucket((ulong)j + 1)) sum += small[j];
                        }
                    }
                    // The 8-byte classes of this bin: j = 0 (17..24 bytes) in bin 0, 2k - 1 and 2k in bin k.
                    for (int j = k == 0 ? 0 : 2 * k - 1; j <= 2 * k; j++)
                    {
                        m += classes[j];
                        if (counter == HistogramFirst + HistogramBucket(8 * ((ulong)j + 3))) sum += classes[j];
                    }
                    switch (counter)
                    {
                        case MallocCalls: sum += m; break;
                        case FreeCalls: sum += f; break;
                        case BytesAllocated: sum += m * usable; break;
                        case BytesFreed: sum += f * usable; break;
                        case BytesInUse: sum += (m - f) * usable; break;
                        case CachedBytes: sum += (f - m) * (usable + 8); break;
                    }
                }
            }
            return sum;
        }

        public const int ProcessSlot = 0;
        public const int FirstArenaSlot = 1;
        public static int SharedSlot(int arenaCount) => 1 + arenaCount;
        public static int FirstThreadSlot(int arenaCount) => 2 + arenaCount;
        public static int SlotCount(int arenaCount, int threadSlots) => 2 + arenaCount + threadSlots;

        public static int SegmentSize(int arenaCount, int threadSlots) => SlotOffset(arenaCount, SlotCount(arenaCount, threadSlots));

        /// <summary>Where slot <paramref name="slot"/> starts (or the slots end, for the slot count):
        /// slots before the thread slots are SlotSize bytes, thread slots ThreadSlotSize.</summary>
        public static int SlotOffset(int arenaCount, int slot)
        {
            int first = FirstThreadSlot(arenaCount);
            return slot <= first ? HeaderSize + slot * SlotSize
                                 : HeaderSize + first * SlotSize + (slot - first) * ThreadSlotSize;
        }

        public static int CounterOffset(int arenaCount, int slot, int counter) => SlotOffset(arenaCount, slot) + counter * 8;

        /// <summary>True for a thread slot, which has the fast paths' counts.</summary>
        public static bool IsThreadSlot(int arenaCount, int slot) => slot >= FirstThreadSlot(arenaCount);

        /// <summary>Bucket index of a request of <paramref name="size"/> bytes: the
        /// smallest i with 2^i >= size (ceil(log2(size))), capped at the +Inf bucket.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static int HistogramBucket(ulong size)
        {
            if (size <= 1) return 0;
            int i = System.Numerics.BitOperations.Log2(size - 1) + 1;
            return i < HistogramBuckets - 1 ? i : HistogramBuckets - 1;
        }
    }
}
