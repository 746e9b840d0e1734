// The writer side of the per-process stats segment (layout: Shared/StatsLayout.cs).
//
// Counters live in one block of memory, s_base: a shared mapping of the
// process's file in the stats directory when publishing works, private memory
// otherwise. Arenas update their own slot with plain stores under their lock;
// process-wide figures (mappings, peak) use atomic instructions because every
// arena touches them. Nothing here ever calls malloc.

using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Stats
{
    internal static unsafe class StatsWriter
    {
        private static byte* s_base;          // where counters are written now
        private static nuint s_size;          // bytes of the counters, page-rounded
        // The file also holds the sample tables, after the counters (Shared/SampleLayout.cs).
        private static nuint FileSize => s_size + (nuint)SampleLayout.RegionBytes;
        private static bool s_published;      // s_base is the shared file mapping
        private static nuint s_reserved;      // bytes of the file backed so far (only these are ever touched)
        private static byte* s_private;       // private fallback
        private static ulong* s_forkGauges;   // the gauges of each slot at fork (BeforeFork)
        private static nuint s_mapOffset;     // where the heap map starts in the segment
        private static ulong s_mapBacked;     // bit i: arena i's map section is backed in the file
        private static ulong s_mapRefused;    // bit i: backing it failed (a full filesystem): no map for arena i
        private static int s_slotCount;
        private static int s_arenaCount;
        private static int s_threadSlots;

        // Thread slots: handed out by a bump index, recycled through a stack of
        // released indices; both under ForkLocks.StatsSlots (only taken at thread start/exit).
        private static int s_slotsHandedOut;
        private static int* s_releasedSlots;
        private static int s_releasedCount;

        /// <summary>Sets up counting for <paramref name="arenaCount"/> arenas and up to
        /// <paramref name="threadSlots"/> threads with slots of their own. Must run before any other mapping.</summary>
        public static bool Initialize(int arenaCount, int threadSlots)
        {
            s_arenaCount = arenaCount;
            s_threadSlots = threadSlots;
            s_slotCount = StatsLayout.SlotCount(arenaCount, threadSlots);
            // The counters, then (page aligned) the heap map: one section per arena.
            s_mapOffset = OsMemory.RoundUpToPage((nuint)StatsLayout.SegmentSize(arenaCount, threadSlots));
            s_size = s_mapOffset + (nuint)(arenaCount * HeapMapLayout.SectionBytes);
            // Mapped directly (not through OsMemory) because counting needs it to exist;
            // it is counted right after.
            void* p = Libc.mmap(null, s_size, Libc.PROT_READ | Libc.PROT_WRITE,
                                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
            if (p == Libc.MAP_FAILED) return false;
            s_private = (byte*)p;
            SetBase(s_private);
            CountMap(s_size);
            nuint releasedBytes = OsMemory.RoundUpToPage((nuint)(threadSlots * sizeof(int)));
            s_releasedSlots = (int*)OsMemory.Map(releasedBytes);
            if (s_releasedSlots == null) return false;
            CountMap(releasedBytes);
            FindGauges();
            nuint forkBytes = OsMemory.RoundUpToPage((nuint)(s_slotCount * s_gaugeCount * sizeof(ulong)));
            s_forkGauges = (ulong*)OsMemory.Map(forkBytes);
            if (s_forkGauges == null) return false;
            CountMap(forkBytes);

            if (SegmentFile.PublishingEnabled())
                Publish();
            return true;
        }

        /// <summary>Arena <paramref name="arena"/>'s section of the heap map, or null while
        /// nothing is published (nobody could read it).</summary>
        /// Its two pages are backed in the file (fallocate) the first time, as thread slots are,
        /// so a full filesystem leaves that arena without a map instead of raising SIGBUS.
        public static byte* MapSection(int arena)
        {
            if (!s_published) return null;
            ulong bit = 1UL << arena;
            if ((MapMask(backed: true) & bit) == 0)
            {
                if ((MapMask(backed: false) & bit) != 0) return null;
                nuint from = s_mapOffset + (nuint)HeapMapLayout.SectionOffset(arena);
                LockSlots(); // SegmentFile.Reserve's scratch space is shared with slot claims
                bool backed = SegmentFile.Reserve(from, from + HeapMapLayout.SectionBytes);
                UnlockSlots();
                if (backed) { fixed (ulong* mask = &s_mapBacked) Atomics.Or(mask, bit); }
                else { fixed (ulong* mask = &s_mapRefused) Atomics.Or(mask, bit); }
                if (!backed) return null;
            }
            return s_base + s_mapOffset + HeapMapLayout.SectionOffset(arena);
        }

        private static ulong MapMask(bool backed)
        {
            if (backed) { fixed (ulong* mask = &s_mapBacked) return Atomics.Read(mask); }
            fixed (ulong* mask = &s_mapRefused) return Atomics.Read(mask);
        }

        /// <summary>Arena <paramref name="arena"/>'s section if it is already backed, else null (never reserves).</summary>
        public static byte* MapSectionIfBacked(int arena) =>
            s_published && (MapMask(backed: true) & (1UL << arena)) != 0
                ? s_base + s_mapOffset + HeapMapLayout.SectionOffset(arena) : null;

        public static ulong* ArenaSlot(int arena) => (ulong*)(s_base + StatsLayout.CounterOffset(s_arenaCount, StatsLayout.FirstArenaSlot + arena, 0));

        /// <summary>The slot shared (with atomic adds) by threads without one of their own.</summary>
        public static ulong* SharedSlot => (ulong*)(s_base + StatsLayout.CounterOffset(s_arenaCount, StatsLayout.SharedSlot(s_arenaCount), 0));

        /// <summary>A slot of the calling thread's own, or -1 when all are taken.</summary>
        public static int ClaimThreadSlot()
        {
            LockSlots();
            int index = -1;
            if (s_releasedCount > 0)
                index = s_releasedSlots[--s_releasedCount];
            else if (s_slotsHandedOut < s_threadSlots && Backed(s_slotsHandedOut + 1))
            {
                index = s_slotsHandedOut++;
                if (s_published)
                    Atomics.Write((int*)(s_base + StatsLayout.OffThreadSlotsUsed), s_slotsHandedOut);
            }
            UnlockSlots();
            return index;
        }

        /// <summary>Gives a thread's slot back for the next thread. Its counts stay in it.</summary>
        public static void ReleaseThreadSlot(int index)
        {
            LockSlots();
            s_releasedSlots[s_releasedCount++] = index;
            UnlockSlots();
        }

        // Statics never move here (there is no GC), but C# still wants `fixed` to take their address.
        private static void LockSlots() { fixed (int* w = &ForkLocks.StatsSlots) FutexLock.Acquire(w); }
        private static void UnlockSlots() { fixed (int* w = &ForkLocks.StatsSlots) FutexLock.Release(w); }

        public static ulong* ThreadSlot(int index) =>
            (ulong*)(s_base + StatsLayout.CounterOffset(s_arenaCount, StatsLayout.FirstThreadSlot(s_arenaCount) + index, 0));

        private static ulong* ProcessSlot => s_processSlot;

        // The process slot's address, kept with s_base: every report of a thread's bytes in use
        // reads it two or three times, and computing it from the layout cost 13 instructions
        // each (callgrind, docs/performance/fragmentation.md).
        private static ulong* s_processSlot;

        private static void SetBase(byte* counters)
        {
            s_base = counters;
            s_processSlot = (ulong*)(counters + StatsLayout.CounterOffset(s_arenaCount, StatsLayout.ProcessSlot, 0));
        }

        // ---- space in the file ----

        /// <summary>Thread slots are backed in chunks of this many bytes as threads claim them.</summary>
        private const int ReserveChunk = 16384;

        /// <summary>Bytes to back for <paramref name="threadSlots"/> thread slots in use: everything
        /// before them, and them, rounded up to a chunk (never past the end of the file).</summary>
        private static nuint ReserveFor(int threadSlots)
        {
            nuint end = (nuint)StatsLayout.CounterOffset(s_arenaCount, StatsLayout.FirstThreadSlot(s_arenaCount) + threadSlots, 0);
            end = (end + ReserveChunk - 1) & ~(nuint)(ReserveChunk - 1);
            return end < s_size ? end : s_size;
        }

        /// <summary>True when the first <paramref name="threadSlots"/> thread slots may be written:
        /// counting is private, or the file's pages for them are backed (backed now if need be).
        /// False leaves the thread on the shared slot rather than risk SIGBUS on a full filesystem.</summary>
        private static bool Backed(int threadSlots)
        {
            if (!s_published) return true;
            nuint needed = ReserveFor(threadSlots);
            if (needed <= s_reserved) return true;
            if (!SegmentFile.Reserve(s_reserved, needed)) return false;
            s_reserved = needed;
            return true;
        }

        /// <summary>Moves the counters into a new file in the stats directory, if one can be made.</summary>
        private static void Publish()
        {
            nuint reserve = ReserveFor(s_slotsHandedOut + 1);
            byte* shared = SegmentFile.Create(FileSize, reserve);
            if (shared == null) return;
            s_reserved = reserve;
            // Counters first, the header (with its magic) last, so a reader never
            // sees a valid-looking header over missing counters.
            // Only the slots that may hold figures: the rest of a new file reads as
            // zeros, and copying untouched pages would fault every one of them in.
            Libc.memcpy(shared + StatsLayout.HeaderSize, s_private + StatsLayout.HeaderSize,
                        (nuint)(StatsLayout.CounterOffset(s_arenaCount, SlotsInUse, 0) - StatsLayout.HeaderSize));
            Adopt(shared);
        }

        /// <summary>From now on counters are written into <paramref name="shared"/> (a new
        /// file mapping, its counters in place); the header goes last.</summary>
        private static void Adopt(byte* shared)
        {
            SetBase(shared);
            s_published = true;
            CountMap(s_size);
            *(ulong*)(shared + SampleLayout.SegOffRegionOffset) = s_size;
            *(ulong*)(shared + SampleLayout.SegOffRegionBytes) = (ulong)SampleLayout.RegionBytes;
            *(uint*)(shared + SampleLayout.SegOffRegionVersion) = SampleLayout.Version;
            SampleTables.Attach(shared + s_size, s_size);
            // Where the heap map is: header bytes 160..191, before the magic is written.
            *(ulong*)(shared + HeapMapLayout.OffMapOffset) = s_mapOffset;
            *(ulong*)(shared + HeapMapLayout.OffMapBytes) = (ulong)s_arenaCount * HeapMapLayout.SectionBytes;
            *(uint*)(shared + HeapMapLayout.OffMapVersion) = HeapMapLayout.Version;
            *(uint*)(shared + HeapMapLayout.OffMapSections) = (uint)s_arenaCount;
            *(uint*)(shared + HeapMapLayout.OffMapSectionBytes) = HeapMapLayout.SectionBytes;
            SegmentFile.WriteHeader(shared, s_slotCount, s_arenaCount, s_threadSlots, s_slotsHandedOut);
        }

        // ---- reading the figures back (the exit summary) ----

        /// <summary>A figure of this process merged from its slots by the schema's rule
        /// (Shared/StatsSchema.cs), as a reader merges it.</summary>
        public static ulong Read(int counter)
        {
            switch (StatsSchema.Of(counter).Merge)
            {
                case SlotMerge.ProcessSlot: return ProcessSlot[counter];
                case SlotMerge.Max: return Max(counter);
                case SlotMerge.SignedSum:
                    ulong sum = Sum(counter);
                    return (long)sum < 0 ? 0 : sum; // a torn read can make it briefly negative
                default: return Sum(counter);
            }
        }

        /// <summary>A counter summed over every slot but the process slot (as the reader does).</summary>
        private static ulong Sum(int counter) => SumOverSlots(counter);

        /// <summary>Figure <paramref name="counter"/> of one slot: its own value and what the
        /// slot's fast-path counts add to it (StatsLayout.FromFastCounts).</summary>
        private static ulong SlotFigure(int slot, ulong* c, int counter) =>
            StatsLayout.IsThreadSlot(s_arenaCount, slot)
                ? c[counter] + StatsLayout.FromFastCounts(counter, c + StatsLayout.FastCountsFirst)
                : c[counter];

        /// <summary>The largest value of a counter over the arena slots.</summary>
        private static ulong Max(int counter)
        {
            ulong largest = 0;
            for (int slot = StatsLayout.FirstArenaSlot; slot < SlotsInUse; slot++)
            {
                ulong v = *(ulong*)(s_base + StatsLayout.CounterOffset(s_arenaCount, slot, counter));
                if (v > largest) largest = v;
            }
            return largest;
        }

        // ---- process-wide figures (atomic: every arena writes them) ----

        public static void CountMap(nuint bytes)
        {
            ulong* slot = ProcessSlot;
            Atomics.Add(&slot[StatsLayout.MmapCalls], 1);
            Atomics.Add(&slot[StatsLayout.BytesMapped], (long)bytes);
        }

        public static void CountUnmap(nuint bytes) => CountUnmaps(1, bytes);

        /// <summary><paramref name="calls"/> munmaps that gave back <paramref name="bytes"/> in all.</summary>
        public static void CountUnmaps(int calls, nuint bytes)
        {
            ulong* slot = ProcessSlot;
            Atomics.Add(&slot[StatsLayout.MunmapCalls], calls);
            Atomics.Add(&slot[StatsLayout.BytesMapped], -(long)bytes);
        }

        /// <summary>Part of a fresh mapping given straight back: one more munmap, fewer bytes.</summary>
        public static void CountTrim(nuint bytes) => CountUnmap(bytes);

        /// <summary>The process-wide bytes in use (as reported so far), for the peak sample table.</summary>
        public static ulong ProcessInUse => Atomics.Read(&ProcessSlot[StatsLayout.ProcessBytesInUse]);

        public static void CountRemap(nuint oldBytes, nuint newBytes)
        {
            ulong* slot = ProcessSlot;
            Atomics.Add(&slot[StatsLayout.MmapCalls], 1);
            Atomics.Add(&slot[StatsLayout.BytesMapped], (long)newBytes - (long)oldBytes);
        }

        /// <summary>Tracks the process-wide bytes in use and its peak. Inlined, as is
        /// GrowthToLookAt: a thread's report (ThreadCaches.FlushInUse) makes both, and on the
        /// fragmentation mix there is one every few heap calls.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void AddInUse(long delta)
        {
            ulong* slot = ProcessSlot;
            long now = Atomics.Add(&slot[StatsLayout.ProcessBytesInUse], delta);
            if (delta > 0)
                Atomics.Max(&slot[StatsLayout.PeakBytesInUse], (ulong)now);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static bool WouldRaisePeak(long delta)
        {
            // A thread sees only its own unreported change, not other threads' (a
            // consumer's frees not yet reported make a producer's allocations look
            // like a new peak). So a peak is reported in quanta of at least 1 KiB or
            // 1/64 of the peak: exact enough, and no atomic on every call.
            ulong* slot = ProcessSlot;
            long peak = (long)slot[StatsLayout.PeakBytesInUse];
            long quantum = peak >> 6 > PeakQuantumFloor ? peak >> 6 : PeakQuantumFloor;
            return delta >= quantum && (long)slot[StatsLayout.ProcessBytesInUse] + delta > peak;
        }

        public const long PeakQuantumFloor = 1024;

        /// <summary>The process's bytes in use as last reported (each thread reports its change
        /// in steps of at most InUseReportStep()): a plain read, for a bound that scales with the heap.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static long ReportedInUse() => (long)ProcessSlot[StatsLayout.ProcessBytesInUse];

        /// <summary>A thread's change of bytes in use is reported in steps of at most this much:
        /// 16 KiB, or 1/256 of the peak where that is more. A fixed 16 KiB was a report every two
        /// or three heap calls on the fragmentation mix (blocks of up to 16 KiB, 45 MiB in use),
        /// each a locked add that waits for the program's stores to drain: 2% of its time.
        /// Between reports the process-wide figure lags the exact one by less than a step a
        /// thread (below 0.4% of the peak), which is what bounds the peak's error (docs/metrics.md).</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static long InUseReportStep() => StepFor((long)ProcessSlot[StatsLayout.PeakBytesInUse]);

        public const long InUseReportStepFloor = 16 << 10;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private static long StepFor(long peak) => peak >> 8 > InUseReportStepFloor ? peak >> 8 : InUseReportStepFloor;

        /// <summary>The growth of a thread's unreported bytes in use at which it is looked at
        /// again: where it would set a new peak (WouldRaisePeak), or a full step. The fast
        /// path then compares with one figure instead of reading the process-wide ones on
        /// every call. With one thread this is exactly when WouldRaisePeak turns true; with
        /// several, other threads' reports made since can move that point, by at most what
        /// they report (a step each): the same bound as the unreported changes themselves.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static long GrowthToLookAt()
        {
            ulong* slot = ProcessSlot;
            long peak = (long)slot[StatsLayout.PeakBytesInUse];
            long quantum = peak >> 6 > PeakQuantumFloor ? peak >> 6 : PeakQuantumFloor;
            long toPeak = peak - (long)slot[StatsLayout.ProcessBytesInUse] + 1;
            long limit = toPeak > quantum ? toPeak : quantum;
            long step = StepFor(peak);
            return limit < step ? limit : step;
        }

        // ---- fork ----

        /// <summary>In the parent, with every arena locked: take a consistent copy.</summary>
        public static void BeforeFork()
        {
            LockSlots();
            // The gauges of every slot in use, while every arena is locked: the heap the
            // child inherits, exactly. Only these few values are copied, so a fork
            // writes to one or two pages here, not the whole segment (each page the
            // parent writes after a fork is a copy-on-write fault; bash forks a lot).
            int used = SlotsInUse;
            fixed (int* gauges = s_gauges.Counters)
                for (int slot = 0; slot < used; slot++)
                {
                    ulong* c = (ulong*)(s_base + StatsLayout.CounterOffset(s_arenaCount, slot, 0));
                    // The gauges with what the fast-path counts add to them: the child starts
                    // its counts at zero.
                    for (int g = 0; g < s_gaugeCount; g++)
                        s_forkGauges[slot * s_gaugeCount + g] = SlotFigure(slot, c, gauges[g]);
                }
        }

        public static void AfterForkInParent() => UnlockSlots();

        /// <summary>In the child: stop writing into the parent's file and publish a
        /// segment of our own. Calls made so far were the parent's, so counters start
        /// at zero; gauges describe the heap the child inherited and are kept.</summary>
        /// <param name="keepSlot">the forking thread's slot (-1 if none): the only thread
        /// that exists in the child; every other slot is free again.</param>
        public static void AfterForkInChild(int keepSlot)
        {
            fixed (int* w = &ForkLocks.StatsSlots) FutexLock.ResetAfterFork(w);
            s_releasedCount = 0;
            for (int i = s_slotsHandedOut - 1; i >= 0; i--)
                if (i != keepSlot) s_releasedSlots[s_releasedCount++] = i;

            byte* inherited = s_base;
            bool wasPublished = s_published;
            s_mapBacked = s_mapRefused = 0; // the child's file is a new one
            // Backed up to the slots the child inherits (all of them are written below).
            nuint reserve = ReserveFor(s_slotsHandedOut + 1);
            byte* target = SegmentFile.PublishingEnabled() ? SegmentFile.Create(FileSize, reserve) : null;
            // A new file reads as zeros: nothing in it is cleared, and only the gauges that are
            // not zero are written, without reading the file first. The loop over every counter
            // of every slot in use found only zeros there: about 40 µs of a fork child on the
            // machine this was measured on (docs/performance/processes.md).
            bool fresh = target != null;
            if (target == null) target = s_private;
            else s_reserved = reserve;
            // The private copy is mostly zeros already: only values that differ are
            // written, so few pages are touched.
            int used = SlotsInUse;
            fixed (int* gauges = s_gauges.Counters)
            fixed (bool* isGauge = s_gauges.IsGauge)
                for (int slot = 0; slot < used; slot++)
                {
                    ulong* c = (ulong*)(target + StatsLayout.CounterOffset(s_arenaCount, slot, 0));
                    if (!fresh)
                    {
                        // A thread slot also holds the fast paths' counts (past CountersPerSlot): counters.
                        int counters = StatsLayout.IsThreadSlot(s_arenaCount, slot) ? StatsLayout.CountersInThreadSlot : StatsLayout.CountersPerSlot;
                        for (int i = 0; i < counters; i++)
                            if (c[i] != 0 && (i >= StatsLayout.CountersPerSlot || !isGauge[i])) c[i] = 0;
                    }
                    for (int g = 0; g < s_gaugeCount; g++)
                    {
                        ulong v = s_forkGauges[slot * s_gaugeCount + g];
                        if (fresh ? v != 0 : c[gauges[g]] != v) c[gauges[g]] = v;
                    }
                }
            // The parent's file mapping is shared with the parent: leave it alone.
            if (wasPublished) Libc.munmap(inherited, FileSize);
            if (target == s_private) SampleTables.Attach(null, 0);
            s_published = false;
            SetBase(s_private);
            if (target != s_private) Adopt(target);
        }

        /// <summary>A figure summed over every slot but the process slot, as a reader sums
        /// it (wrapping; for the debug exports).</summary>
        public static ulong SumOverSlots(int counter)
        {
            ulong sum = 0;
            int used = SlotsInUse;
            for (int slot = StatsLayout.FirstArenaSlot; slot < used; slot++)
                sum += SlotFigure(slot, (ulong*)(s_base + StatsLayout.CounterOffset(s_arenaCount, slot, 0)), counter);
            return sum;
        }

        /// <summary>Slots that may hold figures: process, arenas, shared, and the thread
        /// slots handed out so far (thread slots come last).</summary>
        private static int SlotsInUse => StatsLayout.FirstThreadSlot(s_arenaCount) + s_slotsHandedOut;

        /// <summary>The gauges of a slot (Shared/StatsSchema.cs): the figures that describe the heap
        /// rather than count calls, which a fork child keeps. Read from the schema once, at start-up.</summary>
        private struct GaugeTable
        {
            public fixed int Counters[StatsLayout.CountersPerSlot]; // the first s_gaugeCount are used
            public fixed bool IsGauge[StatsLayout.CountersPerSlot];
        }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static GaugeTable s_gauges;
#pragma warning restore CS0169
        private static int s_gaugeCount;

        private static void FindGauges()
        {
            s_gaugeCount = 0;
            fixed (int* gauges = s_gauges.Counters)
            fixed (bool* isGauge = s_gauges.IsGauge)
                for (int row = 0; row < StatsSchema.Rows; row++)
                {
                    FigureSchema figure = StatsSchema.At(row);
                    if (figure.Kind != FigureKind.Gauge) continue;
                    isGauge[figure.Counter] = true;
                    gauges[s_gaugeCount++] = figure.Counter;
                }
        }
    }
}
