// Regions: the spans an arena maps from the OS and carves into blocks.
//
//   region ─▶ ┌────────────────────┬──────────────────────────────┬──────────┐
//             │ Region (48 bytes)  │ blocks, back to back …       │ sentinel │
//             └────────────────────┴──────────────────────────────┴──────────┘
//                                   ▲ first block: marked first   ▲ 16 bytes, state Sentinel
//
// The first block's mark (Blocks.FirstBit, never a free block below it) and the end
// sentinel's state stop coalescing at the region's edges without any range checks.
// The sentinel's first 8 bytes are the last block's while that block is in use.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Region
    {
        public Region* Next;      // the arena's regions, in address order
        public Region* Prev;
        public nuint Bytes;       // length of the mapping
        public ulong Reserved0;
        public ulong Reserved1;
        public ulong Reserved2;
    }

    internal static unsafe class Regions
    {
        public const int HeaderBytes = 48;
        public const nuint FirstBytes = 1 << 20;     // 1 MiB
        public const nuint LargestBytes = 32 << 20;  // growth stops doubling here

        public static Block* FirstBlock(Region* r) => (Block*)((byte*)r + HeaderBytes);
        public static Block* Sentinel(Region* r) => (Block*)((byte*)r + r->Bytes - Blocks.HeaderBytes);

        /// <summary>True when b is the only block of its region (the region is one free span).
        /// Inlined: every carve and every free asks, and the first test settles it but for a
        /// region's first block (a call cost more than the test: callgrind, fragmentation.md).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsWholeRegion(Block* b) => Blocks.IsFirst(b) && Blocks.Next(b)->State == Blocks.Sentinel;

        public static Region* OfWholeBlock(Block* b) => (Region*)((byte*)b - HeaderBytes);

        /// <summary>Maps a region able to hold a block of <paramref name="units"/>; its one
        /// free block is returned (not yet in the index), or null when out of memory.</summary>
        public static Block* Map(Arena* arena, uint units)
        {
            nuint bytes = arena->NextRegionBytes;
            nuint need = OsMemory.RoundUpToPage(HeaderBytes + ((nuint)units << Blocks.UnitShift) + Blocks.HeaderBytes);
            if (need > bytes) bytes = need;
            byte* memory = MapRegionMemory(arena, bytes);
            if (memory == null && bytes > need)
            {
                // No room for the next region of the doubling: one just big enough (at
                // least a first region's size), so that the last of the address space is used.
                bytes = need > FirstBytes ? need : FirstBytes;
                memory = MapRegionMemory(arena, bytes);
            }
            if (memory == null) return null;
            if (!PageMap.Mark(memory, bytes))
            {
                UnmapRegionMemory(arena, memory, bytes);
                return null;
            }
            if (arena->NextRegionBytes < LargestBytes) arena->NextRegionBytes *= 2;

            Region* r = (Region*)memory;
            r->Bytes = bytes;
            Link(arena, r);

            Block* first = FirstBlock(r);
            uint firstUnits = (uint)((bytes - HeaderBytes - Blocks.HeaderBytes) >> Blocks.UnitShift);
            Blocks.Set(first, firstUnits, arena->Index, Blocks.Free);
            Blocks.MarkFirst(first);
            Block* end = Sentinel(r);
            Blocks.MarkPrevFree(end, firstUnits);
            Blocks.Set(end, 1, arena->Index, Blocks.Sentinel);
            Arenas.UntouchedAdded(arena, (byte*)first + Blocks.HeaderBytes, (byte*)end);
            return first;
        }

        /// <summary>Grows the arena's topmost region in place when it ends where the used part
        /// of the arena's reservation ends (as the highest one there does, unless a mapping
        /// there was refused or the region above it went back): the
        /// pages above it are mapped (a region's worth, NextRegionBytes, or what
        /// <paramref name="units"/> and an end sentinel need), the region's end sentinel moves to
        /// the new end, and the old sentinel's 16 bytes begin the new space. Returns the old
        /// sentinel, whose prev field still describes the block below it (the caller makes the
        /// new space a free block, or part of that block), and the units added; null when the
        /// top region cannot grow.</summary>
        public static Block* GrowTop(Arena* arena, uint units, out uint addedUnits)
        {
            addedUnits = 0;
            byte* span = arena->SpanBase;
            if (span == null) return null;
            // The region that ends where the used part of the reservation ends, if one does
            // (the highest in the reservation; regions mapped elsewhere may lie above it).
            Region* top = arena->Regions;
            while (top != null && (byte*)top + top->Bytes != span + arena->SpanUsed) top = top->Next;
            if (top == null) return null;
            nuint bytes = arena->NextRegionBytes;
            nuint need = OsMemory.RoundUpToPage(((nuint)units << Blocks.UnitShift) + Blocks.HeaderBytes);
            if (need > bytes) bytes = need;
            if (arena->SpanUsed + bytes > SpanBytes(arena)) return null;
            byte* memory = Mappings.MapInto(span + arena->SpanUsed, bytes);
            if (memory == null) return null;
            arena->SpanUsed += bytes;
            if (!PageMap.Mark(memory, bytes))
            {
                UnmapRegionMemory(arena, memory, bytes);
                return null;
            }
            if (arena->NextRegionBytes < LargestBytes) arena->NextRegionBytes *= 2;
            Block* oldEnd = Sentinel(top);
            top->Bytes += bytes;
            Blocks.Set(Sentinel(top), 1, arena->Index, Blocks.Sentinel);
            Arenas.UntouchedAdded(arena, (byte*)oldEnd + Blocks.HeaderBytes, (byte*)Sentinel(top));
            addedUnits = (uint)(bytes >> Blocks.UnitShift);
            return oldEnd;
        }

        /// <summary>The whole pages at the end of region r that a trim gives back: those of its
        /// last block when that is free (and not the whole region, which goes back whole), above
        /// what the block keeps (a minimum block) and a new end sentinel. 0 when there are none;
        /// <paramref name="keepEnd"/> is where the region would end.</summary>
        public static nuint TrimmableTail(Region* r, out byte* keepEnd)
        {
            Block* end = Sentinel(r);
            keepEnd = (byte*)r + r->Bytes;
            if (!Blocks.PrevIsFree(end)) return 0;
            Block* last = Blocks.Prev(end);
            if (IsWholeRegion(last)) return 0;
            byte* keep = (byte*)OsMemory.RoundUpToPage((nuint)last + Blocks.MinBytes + Blocks.HeaderBytes);
            if (keep >= keepEnd) return 0;
            nuint tail = (nuint)(keepEnd - keep);
            keepEnd = keep;
            return tail;
        }

        /// <summary>Gives the trimmable tail of region r (TrimmableTail) back to the OS, the
        /// way glibc's malloc_trim trims the top of its heap: the region's last free block
        /// shrinks to end at the new sentinel. Returns the bytes given back: 0 when there was
        /// nothing to trim or the kernel refused (then nothing changed). The caller updates the
        /// index (the block shrank in place) and the figures.</summary>
        public static nuint TrimTail(Arena* arena, Region* r)
        {
            nuint tail = TrimmableTail(r, out byte* keepEnd);
            if (tail == 0) return 0;
            Block* last = Blocks.Prev(Sentinel(r));
            // Unmarked first, as for a whole region: no lookup may find a page going away.
            PageMap.Unmark(keepEnd, tail);
            if (!UnmapRegionMemory(arena, keepEnd, tail))
            {
                PageMap.Mark(keepEnd, tail); // its leaf exists already: cannot fail
                return 0;
            }
            r->Bytes -= tail;
            uint units = (uint)((nuint)(keepEnd - Blocks.HeaderBytes - (byte*)last) >> Blocks.UnitShift);
            Blocks.Set(last, units, arena->Index, Blocks.Free);
            Block* end = Sentinel(r);
            Blocks.MarkPrevFree(end, units);
            Blocks.Set(end, 1, arena->Index, Blocks.Sentinel);
            return tail;
        }

        /// <summary>Gives wholly free region r back to the OS; false when the kernel refuses
        /// (at vm.max_map_count, see OsMemory.Defer): then r stays as it was, and the
        /// caller keeps it.</summary>
        public static bool TryUnmap(Arena* arena, Region* r)
        {
            nuint bytes = r->Bytes;
            // Unlinked and unmarked first, so no walk or lookup ever finds a page that
            // is going away; put back as it was if the kernel refuses.
            Unlink(arena, r);
            PageMap.Unmark(r, bytes);
            if (!UnmapRegionMemory(arena, (byte*)r, bytes))
            {
                PageMap.Mark(r, bytes); // its leaf exists already: cannot fail
                Link(arena, r);
                return false;
            }
            return true;
        }

        // ---- where regions go: upwards through a reservation of the arena's own ----
        //
        // Without help the kernel places each new mapping below the last, so a newer
        // region would have a lower address than an older one, and first fit (lowest
        // address first) would prefer the newest, least used region over the holes of the
        // older ones. So each arena reserves address space once (no memory) and maps its
        // regions into it one after another, upwards, like a heap grown with brk: address
        // order is age order. Past the reservation, regions are mapped wherever the kernel
        // likes, as before.

        private const nuint ReservationBytes = (nuint)1 << 30;
        private const int PageShift = 12;

        private static nuint SpanBytes(Arena* arena) => (nuint)arena->SpanPages << PageShift;

        /// <summary>The bytes from the start of the arena's reservation to the end of its highest
        /// region, every one of them readable (0 when it has no reservation): regions, and
        /// regions given back, which read as zeros (OsMemory.MakeReadable). Above them the
        /// reservation is PROT_NONE: reserved readable, the whole gigabyte would be filled in
        /// in a process that locks its future memory (OsMemory.MakeReadable says how much).</summary>
        public static nuint ReadableSpanBytes(Arena* arena) => arena->SpanBase != null ? arena->SpanUsed : 0;

        /// <summary>Gives up the part of the arena's reservation above its topmost region
        /// (address space only: it holds no memory, but counts against RLIMIT_AS). Regions
        /// mapped later go wherever the kernel puts them.</summary>
        public static void ReleaseReservationTail(Arena* arena)
        {
            byte* span = arena->SpanBase;
            nuint total = SpanBytes(arena);
            if (span == null || arena->SpanUsed >= total) return;
            // Threads' copies of the readable part first (a region given back above SpanUsed
            // kept them readable until now): a free must not read a header in address space
            // that may belong to someone else's mapping next.
            ThreadCaches.ShrinkSpans(arena, arena->SpanUsed);
            if (Libc.munmap(span + arena->SpanUsed, total - arena->SpanUsed) == 0)
                arena->SpanPages = (uint)(arena->SpanUsed >> PageShift);
        }

        private static byte* MapRegionMemory(Arena* arena, nuint bytes)
        {
            if (arena->SpanBase == null && !arena->SpanTried)
            {
                arena->SpanTried = true;
                arena->SpanBase = OsMemory.Reserve(ReservationBytes);
                arena->SpanPages = (uint)(ReservationBytes >> PageShift);
            }
            if (arena->SpanBase != null && arena->SpanUsed + bytes <= SpanBytes(arena))
            {
                byte* memory = Mappings.MapInto(arena->SpanBase + arena->SpanUsed, bytes);
                if (memory != null)
                {
                    arena->SpanUsed += bytes;
                    return memory;
                }
            }
            return Mappings.Map(bytes);
        }

        private static bool UnmapRegionMemory(Arena* arena, byte* memory, nuint bytes)
        {
            Arenas.UntouchedDropped(arena); // it may lie in what goes back
            byte* span = arena->SpanBase;
            if (span != null && memory >= span && memory < span + SpanBytes(arena))
            {
                if (!Mappings.UnmapInto(memory, bytes)) return false;
                // Readable again, as zeros: the free fast path reads headers anywhere below
                // the arena's highest region (ReadableSpanBytes), and a pointer into a region
                // that went back (a double free) must read a bad header there, not fault.
                if (!OsMemory.MakeReadable(memory, bytes)) ThreadCaches.StopSpanReads();
                // The topmost region's space can be handed out again.
                if (memory + bytes == span + arena->SpanUsed) arena->SpanUsed -= bytes;
                return true;
            }
            // Outside the reservation: a refused munmap is retried later by OsMemory, and
            // the addresses stay ours meanwhile, so the region is gone either way.
            Mappings.Unmap(memory, bytes);
            return true;
        }

        private static void Link(Arena* arena, Region* r)
        {
            Region* before = null;
            Region* after = arena->Regions;
            while (after != null && after < r) { before = after; after = after->Next; }
            r->Prev = before;
            r->Next = after;
            if (before != null) before->Next = r; else arena->Regions = r;
            if (after != null) after->Prev = r;
        }

        private static void Unlink(Arena* arena, Region* r)
        {
            if (r->Prev != null) r->Prev->Next = r->Next; else arena->Regions = r->Next;
            if (r->Next != null) r->Next->Prev = r->Prev;
        }
    }
}
