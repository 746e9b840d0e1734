// The binary layout of the heap map: a coarse picture of every region of the heap
// (how much of each cell is in use, free, or held in thread caches), published in
// the stats segment beside the counters.
//
// Compiled by both sides, like StatsLayout.cs: the writer in libkonfiscator.so and
// the reader in the tool. Constants and plain arithmetic only.
//
// Where: the segment header's bytes 160..191 (StatsLayout leaves them to the map)
// say where the map is; an offset of 0 means there is none. The map lies after the
// counter slots, page aligned, and is ArenaSections * SectionBytes long: one fixed
// section per arena, written only with that arena's lock held.
//
// Cost: a section is rebuilt by walking the arena's blocks, with the arena's lock
// held, on the allocator's slow paths only (never on a thread-cache hit): soon
// after a region is mapped or unmapped, and otherwise at most every 250 ms; and
// never more than 1/20 of the time (a walk that took t waits at least 20 t). Its size is fixed, so a process with many regions makes cells coarser
// (cells of 64 KiB, doubling until the arena's regions fit), never a bigger map.
//
// Consistency: each section is guarded by a sequence number (a seqlock). The
// writer makes it odd before it changes anything and even again when it is done;
// a reader copies the section and takes the copy only when the number was the
// same even value before and after.
//
//   section ─▶ ┌───────────────────────────────┐ 0
//              │ header (sequence, cell size,  │
//              │ totals, free-block histogram) │
//              ├───────────────────────────────┤ OffRegions
//              │ MaxRegions region entries     │ u64 start address, u32 bytes / 4096, u32 first cell
//              ├───────────────────────────────┤ OffCells
//              │ MaxCells cells, 4 bytes each  │ used, free, cached (in 255ths of the cell), flags
//              └───────────────────────────────┘ SectionBytes

namespace Konfiscator.Stats
{
    internal static class HeapMapLayout
    {
        // ---- in the segment header (StatsLayout), bytes 160..191 ----
        public const int OffMapOffset = 160;       // u64  byte offset of the map in the file; 0 = no map
        public const int OffMapBytes = 168;        // u64  bytes of the map (ArenaSections * SectionBytes)
        public const int OffMapVersion = 176;      // u32  Version
        public const int OffMapSections = 180;     // u32  sections (one per arena)
        public const int OffMapSectionBytes = 184; // u32  SectionBytes
        // 188..191 reserved (0)

        public const uint Version = 1;

        /// <summary>Bytes of one arena's section: two pages.</summary>
        public const int SectionBytes = 8192;

        // ---- a section's header ----
        public const int OffSequence = 0;          // u32  seqlock: odd while the section changes; 0 = never written
        public const int OffRegionCount = 4;       // u32  region entries in use
        public const int OffCellShift = 8;         // u32  log2 of a cell's bytes (at least MinCellShift)
        public const int OffCellCount = 12;        // u32  cells in use
        public const int OffUpdates = 16;          // u64  how many times the section was rebuilt
        public const int OffUpdatedMs = 24;        // u64  when (CLOCK_MONOTONIC_COARSE, ms)
        public const int OffOmittedRegions = 32;   // u32  regions past MaxRegions, not drawn (their bytes: below)
        public const int OffWalkMicroseconds = 36; // u32  how long the last rebuild took (µs, CLOCK_MONOTONIC)
        public const int OffOmittedBytes = 40;     // u64
        public const int OffUsedBytes = 48;        // u64  bytes of used blocks (headers, region headers and sentinels included)
        public const int OffFreeBytes = 56;        // u64  bytes of free blocks
        public const int OffFreeHistogram = 64;    // u32 * FreeBuckets: free blocks by size, as StatsLayout.HistogramBucket
        public const int FreeBuckets = 32;         //   bucket i: sizes in (2^(i-1), 2^i]; the last: larger
        public const int OffCachedBytes = 192;     // u64  bytes of blocks held in thread caches
        public const int OffRegionBytes = 200;     // u64  bytes of the regions drawn
        // 208..255 reserved (0)

        public const int OffRegions = 256;
        public const int RegionEntryBytes = 16;    // u64 start, u32 pages (bytes / PageUnit), u32 first cell
        public const int MaxRegions = 96;
        public const int PageUnit = 4096;

        public const int OffCells = OffRegions + MaxRegions * RegionEntryBytes; // 1792
        public const int CellBytes = 4;            // byte 0 used, 1 free, 2 cached (255ths of the cell), 3 flags (0)
        public const int MaxCells = (SectionBytes - OffCells) / CellBytes;     // 1600
        public const int CellScale = 255;

        /// <summary>64 KiB: the finest cell.</summary>
        public const int MinCellShift = 16;

        /// <summary>Where the map starts: the first page boundary after the counter slots.</summary>
        public static long MapOffset(long segmentBytes, int pageSize) => (segmentBytes + pageSize - 1) / pageSize * pageSize;

        public static int SectionOffset(int arena) => arena * SectionBytes;

        /// <summary>Cells a region of <paramref name="bytes"/> takes with cells of 2^shift bytes.</summary>
        public static ulong CellsFor(ulong bytes, int shift) => (bytes + (1UL << shift) - 1) >> shift;
    }
}
