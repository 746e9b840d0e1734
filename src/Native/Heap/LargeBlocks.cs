// Large blocks: requests at or above the mapping threshold (or with alignment
// above 64 KiB) get a mapping of their own, returned to the OS on free.
//
// The threshold starts at 128 KiB and, as glibc's does, rises when a large block
// is freed: the first time to the block's usable size + 1, as glibc's, and from then
// on to the power of two above its size, up to 32 MiB (RaisedThreshold): a program
// that keeps allocating and freeing large blocks is better served by reusing heap
// memory (no mmap/munmap, no page faults on fresh pages) than by a new mapping each
// time, but one large block freed says no more than glibc's rule assumes.
//
//   mapping ─▶ ┌─────────── offset ───────────┬────────┬──────────────────────┐
//              │ (alignment padding, if any)  │ header │ payload …            │
//              └──────────────────────────────┴────────┴──────────────────────┘
// The header's fields mean something else than in a heap block:
//   SizeUnits = length of the mapping in pages, PrevTag = offset of the header
//   from the mapping's start in 16-byte units, Arena = arena charged for it.

using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class LargeBlocks
    {
        public const nuint InitialThreshold = 128 << 10;
        public const nuint MaxThreshold = 32 << 20;
        private static nuint s_threshold = InitialThreshold;
        /// <summary>Whether a freed large block has raised the threshold yet (RaisedThreshold).</summary>
        private static bool s_thresholdRaised;

        /// <summary>Requests of this many bytes or more get their own mapping.</summary>
        public static nuint Threshold => s_threshold;
        public const nuint MaxHeapAlignment = 64 << 10;
        private const int PageShift = 12;
        // Requests beyond this cannot be mapped on x86-64 anyway (47-bit user space).
        private const ulong MaxRequest = 1UL << 46;

        /// <summary>False for a request no mapping could ever hold (more than the address space).</summary>
        public static bool CouldBeMapped(nuint size, nuint alignment) => size <= MaxRequest && alignment <= MaxRequest;

        public static byte* MapStart(Block* b) => (byte*)b - ((nuint)b->PrevTag << Blocks.UnitShift);
        public static nuint MapLength(Block* b) => (nuint)b->SizeUnits << PageShift;
        public static nuint Usable(Block* b) => (nuint)(MapStart(b) + MapLength(b) - Blocks.Payload(b));

        /// <summary>A new large block of at least <paramref name="size"/> usable bytes whose payload
        /// is <paramref name="alignment"/>-aligned (a power of two ≥ 16); null when out of memory.</summary>
        public static Block* Allocate(nuint size, nuint alignment, ushort arena)
        {
            if (size > MaxRequest || alignment > MaxRequest) return null;
            byte* start;
            byte* payload;
            nuint length;
            if (alignment <= OsMemory.PageSize)
            {
                // The mapping is page aligned, so the payload can sit at a fixed offset.
                nuint lead = alignment > Blocks.HeaderBytes ? alignment : Blocks.HeaderBytes;
                length = OsMemory.RoundUpToPage(lead + size);
                start = Mappings.Map(length);
                if (start == null) return null;
                payload = start + lead;
            }
            else
            {
                // Map enough to find an aligned payload inside, then give back the
                // pages before the header's page and after the payload's end.
                nuint over = OsMemory.RoundUpToPage(size + alignment + OsMemory.PageSize);
                byte* raw = Mappings.Map(over);
                if (raw == null) return null;
                payload = (byte*)(((nuint)raw + Blocks.HeaderBytes + alignment - 1) & ~(alignment - 1));
                start = (byte*)((nuint)(payload - Blocks.HeaderBytes) & ~(OsMemory.PageSize - 1));
                byte* end = (byte*)OsMemory.RoundUpToPage((nuint)(payload + size));
                Mappings.Trim(raw, (nuint)(start - raw));
                Mappings.Trim(end, (nuint)(raw + over - end));
                length = (nuint)(end - start);
            }
            if (!PageMap.Mark(start, length))
            {
                Mappings.Unmap(start, length);
                return null;
            }
            Block* b = Blocks.FromPayload(payload);
            b->PrevTag = (uint)((nuint)((byte*)b - start) >> Blocks.UnitShift);
            Blocks.Set(b, (uint)(length >> PageShift), arena, Blocks.Large);
            return b;
        }

        public static void Release(Block* b)
        {
            byte* start = MapStart(b);
            nuint length = MapLength(b);
            nuint usable = Usable(b);
            if (usable >= s_threshold && usable < MaxThreshold && !s_thresholdFixed)
            {
                // Racy on purpose: any recent value is as good.
                s_threshold = s_thresholdRaised ? RaisedThreshold(usable) : usable + 1;
                s_thresholdRaised = true;
            }
            PageMap.Unmark(start, length);
            Mappings.Unmap(start, length);
        }

        /// <summary>The threshold after a large block of <paramref name="usable"/> bytes was
        /// freed, once one freed block has raised it already: the next power of two above it (at
        /// most MaxThreshold), where glibc takes the usable size + 1. With glibc's rule every
        /// request larger than all freed so far gets a fresh mapping and faults in every page of
        /// it: a program whose sizes vary widely (large_blocks: 64 KiB to 4 MiB) kept mapping new
        /// record sizes all its run: 18 730 page faults, 13 570 with this rule (docs/heap.md,
        /// "Regions"). Requests up to twice a freed size now come from the heap, where the freed
        /// blocks are. The first rise keeps glibc's rule: a buffer that grows by doubling (sqlite3's,
        /// 1 MiB freed for one of 2 MiB) would otherwise put its next size in the heap, where the
        /// pages stay resident after its free instead of going back with the mapping
        /// (docs/performance/memory.md, "Large blocks").</summary>
        public static nuint RaisedThreshold(nuint usable)
        {
            nuint t = InitialThreshold;
            while (t <= usable && t < MaxThreshold) t <<= 1;
            return t;
        }

        /// <summary>Resizes a large block with mremap when its payload sits at the plain
        /// offset (no alignment padding); null if it cannot (the caller then copies).</summary>
        public static Block* Remap(Block* b, nuint size)
        {
            if (b->PrevTag != 0 || size > MaxRequest) return null;
            byte* start = MapStart(b);
            nuint oldLength = MapLength(b);
            nuint newLength = OsMemory.RoundUpToPage(Blocks.HeaderBytes + size);
            if (newLength == oldLength) return b;
            // The pages are unmarked while the mapping may move; nobody else may look
            // at this block meanwhile (the caller owns it).
            PageMap.Unmark(start, oldLength);
            byte* moved = Mappings.Remap(start, oldLength, newLength);
            if (moved == null)
            {
                PageMap.Mark(start, oldLength);
                return null;
            }
            if (!PageMap.Mark(moved, newLength))
                Fatal.Die("out of memory for the page map while remapping");
            Block* nb = (Block*)moved;
            ushort arena = Blocks.ArenaOf(nb);
            nb->PrevTag = 0;
            Blocks.Set(nb, (uint)(newLength >> PageShift), arena, Blocks.Large);
            return nb;
        }
    }
}
