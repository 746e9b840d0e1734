// The writer of the heap map (layout and cost rules: Shared/HeapMapLayout.cs).
//
// Each arena rebuilds its own section of the map by walking its regions' blocks,
// always with its lock held, from Heap.UnlockArena: a slow path (a thread-cache
// hit never gets there). An arena looks at the clock only every TickEvery slow
// paths; a region mapped or unmapped makes the next unlock look at once. Nothing
// here calls malloc, and nothing is written while the segment is not published
// (no reader could see it).

using Konfiscator.Native.Stats;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class HeapMap
    {
        /// <summary>Slow-path unlocks between two looks at the clock.</summary>
        private const int TickEvery = 64;
        /// <summary>A section is rebuilt at most this often…</summary>
        private const long IntervalMs = 250;
        /// <summary>…and after a change of regions, no sooner than this after the last rebuild.</summary>
        private const long RegionChangeFloorMs = 10;
        /// <summary>A rebuild that took t waits at least t * this before the next (at most 1% of the
        /// time). A walk reads every block's header, one cache miss each once the heap outgrows the
        /// caches: about 2.5 ms for the fragmentation mix's 60 MiB (25 000 blocks).</summary>
        private const long WalkCostFactor = 100;

        /// <summary>A region of arena a was mapped or unmapped: rebuild at the next unlock (soon).</summary>
        public static void RegionsChanged(Arena* a)
        {
            a->MapCountdown = 0;
            byte* section = StatsWriter.MapSectionIfBacked(a->Index);
            if (section == null) return;
            long last = (long)*(ulong*)(section + HeapMapLayout.OffUpdatedMs);
            // Sooner than the usual interval, but never more often than the walks' own cost allows.
            long walk = WaitAfterWalkMs(section);
            long soonest = last + (walk > RegionChangeFloorMs ? walk : RegionChangeFloorMs);
            if (soonest < a->MapDueMs) a->MapDueMs = soonest;
        }

        /// <summary>With a's lock held, on a slow path: rebuilds a's section when it is due.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        public static void Tick(Arena* a)
        {
            a->MapCountdown = TickEvery;
            byte* section = StatsWriter.MapSection(a->Index);
            if (section == null) return;
            long now = Clock.CoarseMilliseconds();
            if (now < a->MapDueMs) return;
            Update(a, section, now);
            // Timed exactly: the coarse clock reads 0 for most walks, and 10 ms floors after
            // region changes then let a walk of a few ms run every 10 ms (fragmentation: 4% of
            // its time, perf).
            long wait = WaitAfterWalkMs(section);
            a->MapDueMs = now + (wait > IntervalMs ? wait : IntervalMs);
        }

        /// <summary>How long the section's last walk asks the next to wait (WalkCostFactor times
        /// its duration), in ms.</summary>
        private static long WaitAfterWalkMs(byte* section) =>
            *(uint*)(section + HeapMapLayout.OffWalkMicroseconds) * WalkCostFactor / 1000;

        /// <summary>With a's lock held: rebuilds a's section now (tests, through a debug export).</summary>
        public static void UpdateNow(Arena* a)
        {
            byte* section = StatsWriter.MapSection(a->Index);
            if (section != null) Update(a, section, Clock.CoarseMilliseconds());
        }

        private static void Update(Arena* a, byte* section, long now)
        {
            long started = Clock.MonotonicMicroseconds();
            uint* sequence = (uint*)(section + HeapMapLayout.OffSequence);
            uint before = *sequence;
            Atomics.Write((int*)sequence, (int)(before | 1)); // odd: changing (a reader retries)

            // The finest cells with which every region (up to MaxRegions) fits.
            int regions = 0, omitted = 0;
            ulong omittedBytes = 0, regionBytes = 0;
            for (Region* r = a->Regions; r != null; r = r->Next)
            {
                if (regions < HeapMapLayout.MaxRegions) { regions++; regionBytes += r->Bytes; }
                else { omitted++; omittedBytes += r->Bytes; }
            }
            int shift = HeapMapLayout.MinCellShift;
            while (CellsNeeded(a, regions, shift) > HeapMapLayout.MaxCells) shift++;

            uint* histogram = (uint*)(section + HeapMapLayout.OffFreeHistogram);
            for (int i = 0; i < HeapMapLayout.FreeBuckets; i++) histogram[i] = 0;
            var walk = new Walk { Histogram = histogram, Cells = section + HeapMapLayout.OffCells, Shift = shift };

            byte* entry = section + HeapMapLayout.OffRegions;
            int index = 0;
            for (Region* r = a->Regions; r != null && index < regions; r = r->Next, index++)
            {
                *(ulong*)entry = (ulong)r;
                *(uint*)(entry + 8) = (uint)(r->Bytes / HeapMapLayout.PageUnit);
                *(uint*)(entry + 12) = walk.NextCell;
                entry += HeapMapLayout.RegionEntryBytes;
                walk.Region(r);
            }

            *(uint*)(section + HeapMapLayout.OffRegionCount) = (uint)regions;
            *(uint*)(section + HeapMapLayout.OffCellShift) = (uint)shift;
            *(uint*)(section + HeapMapLayout.OffCellCount) = walk.NextCell;
            *(ulong*)(section + HeapMapLayout.OffUpdates) += 1;
            *(ulong*)(section + HeapMapLayout.OffUpdatedMs) = (ulong)now;
            *(uint*)(section + HeapMapLayout.OffOmittedRegions) = (uint)omitted;
            *(ulong*)(section + HeapMapLayout.OffOmittedBytes) = omittedBytes;
            *(ulong*)(section + HeapMapLayout.OffUsedBytes) = walk.TotalUsed;
            *(ulong*)(section + HeapMapLayout.OffFreeBytes) = walk.TotalFree;
            *(ulong*)(section + HeapMapLayout.OffCachedBytes) = walk.TotalCached;
            *(ulong*)(section + HeapMapLayout.OffRegionBytes) = regionBytes;
            long took = Clock.MonotonicMicroseconds() - started;
            *(uint*)(section + HeapMapLayout.OffWalkMicroseconds) = took < 0xFFFFFFFFL ? (uint)took : 0xFFFFFFFFu;

            uint after = (before | 1) + 1; // even again, never 0 once written
            Atomics.Write((int*)sequence, (int)after);
        }

        private static ulong CellsNeeded(Arena* a, int regions, int shift)
        {
            ulong cells = 0;
            int i = 0;
            for (Region* r = a->Regions; r != null && i < regions; r = r->Next, i++)
                cells += HeapMapLayout.CellsFor(r->Bytes, shift);
            return cells;
        }

        private const int KindUsed = 0, KindFree = 1, KindCached = 2;

        /// <summary>Walks regions block by block, in address order, adding each block's bytes to
        /// the cells it covers and writing a cell out once the walk has passed it.</summary>
        private struct Walk
        {
            public uint* Histogram;
            public byte* Cells;
            public int Shift;
            public uint NextCell;
            public ulong TotalUsed, TotalFree, TotalCached;

            private nuint _cellStart, _cellEnd, _regionEnd;
            private ulong _used, _free, _cached;

            public void Region(Region* r)
            {
                _regionEnd = (nuint)r + r->Bytes;
                _cellStart = (nuint)r;
                _cellEnd = Min(_cellStart + ((nuint)1 << Shift), _regionEnd);
                _used = _free = _cached = 0;

                Add(KindUsed, (nuint)r, (nuint)Regions.FirstBlock(r)); // the region's header
                Block* end = Regions.Sentinel(r);
                Block* b = Regions.FirstBlock(r);
                while (b < end)
                {
                    nuint size = Blocks.Bytes(b);
                    if (size == 0 || (nuint)b + size > (nuint)end) break; // a broken header: the rest counts as used
                    byte state = b->State;
                    int kind = state == Blocks.Free ? KindFree : state == Blocks.Cached ? KindCached : KindUsed;
                    if (kind == KindFree)
                        Histogram[FreeBucket(size)]++;
                    Add(kind, (nuint)b, (nuint)b + size);
                    b = Blocks.Next(b);
                }
                Add(KindUsed, (nuint)b, _regionEnd); // the sentinel (and whatever could not be walked)
            }

            private void Add(int kind, nuint from, nuint to)
            {
                while (from < to)
                {
                    nuint upto = to < _cellEnd ? to : _cellEnd;
                    ulong bytes = upto - from;
                    if (kind == KindFree) { _free += bytes; TotalFree += bytes; }
                    else if (kind == KindCached) { _cached += bytes; TotalCached += bytes; }
                    else { _used += bytes; TotalUsed += bytes; }
                    from = upto;
                    if (from == _cellEnd) NextCellOf();
                }
            }

            private void NextCellOf()
            {
                ulong span = _cellEnd - _cellStart;
                byte free = Scale(_free, span), cached = Scale(_cached, span);
                int used = HeapMapLayout.CellScale - free - cached;
                byte* cell = Cells + NextCell * HeapMapLayout.CellBytes;
                cell[0] = (byte)(used < 0 ? 0 : used);
                cell[1] = free;
                cell[2] = cached;
                cell[3] = 0;
                NextCell++;
                _used = _free = _cached = 0;
                _cellStart = _cellEnd;
                _cellEnd = Min(_cellStart + ((nuint)1 << Shift), _regionEnd);
            }

            private static byte Scale(ulong part, ulong whole) =>
                (byte)((part * HeapMapLayout.CellScale + whole / 2) / whole);

            private static nuint Min(nuint x, nuint y) => x < y ? x : y;
        }

        private static int FreeBucket(nuint size)
        {
            int bucket = StatsLayout.HistogramBucket(size);
            return bucket < HeapMapLayout.FreeBuckets ? bucket : HeapMapLayout.FreeBuckets - 1;
        }
    }
}
