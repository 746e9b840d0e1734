// Which pages hold the allocator's heap and large blocks.
//
// free() must never read memory around a pointer it did not hand out: a wild
// pointer would turn a clear "invalid pointer" report into a segfault. So every
// page the heap maps is marked here, and a pointer is looked at only if the page
// of its block header is marked.
//
// Two levels over the 47-bit user address space: a top table with one entry per
// GiB (2^17 entries, reserved once, touched lazily), each pointing to a bitmap of
// that GiB's 2^18 pages (32 KiB), mapped the first time a heap page lands there.
// Bits are set and cleared atomically because neighbouring mappings of different
// arenas can share a bitmap word; lookups are two plain loads and take no lock.

using System.Runtime.CompilerServices;
using System.Threading;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class PageMap
    {
        private const int PageShift = 12;
        private const int GigShift = 30;
        private const int TopEntries = 1 << (47 - GigShift);
        private const int PagesPerGig = 1 << (GigShift - PageShift);
        private const nuint LeafBytes = PagesPerGig / 8;

        private static ulong** s_top;
        // A second map of the same shape for the pages of the free index's node chunks
        // (FreeIndex), so that a node pointer read from a free block is only followed
        // when it points into one (Heap/FreeLinks.cs). Node chunks are never unmapped.
        private static ulong** s_nodeTop;
        // The lowest heap address ever marked and the end of the highest: a cheap range
        // test (MayContain) for the hot paths, which the exact lookup (Contains) refines
        // where a few more loads do not matter. Each only ever moves outwards, so a reader
        // that sees either one new and the other old still gets a window that holds every
        // page marked before it looked.
        // Each is the only static field of a class of its own: ILC reaches a class's first
        // static with one RIP-relative operand, others through a lea of the class's statics
        // first (two instructions more on the malloc fast path, which tests both).
        private static class LowestMarked { public static ulong Address = 0xFFFF_FFFF_FFFF_FFFF; }
        private static class EndOfHighestMarked { public static ulong Address; }

        public static bool Initialize()
        {
            s_top = (ulong**)Mappings.Map((nuint)TopEntries * (nuint)sizeof(ulong*), noReserve: true);
            s_nodeTop = (ulong**)Mappings.Map((nuint)TopEntries * (nuint)sizeof(ulong*), noReserve: true);
            return s_top != null && s_nodeTop != null;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Contains(void* address) => Lookup(s_top, address);

        /// <summary>True if <paramref name="address"/> lies in a chunk of free-index nodes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool ContainsNode(void* address) => Lookup(s_nodeTop, address);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool Lookup(ulong** top, void* address)
        {
            ulong a = (ulong)address;
            ulong gig = a >> GigShift;
            if (gig >= TopEntries) return false;
            ulong* leaf = (ulong*)Atomics.Read((ulong*)&top[gig]);
            if (leaf == null) return false;
            ulong page = (a >> PageShift) & (PagesPerGig - 1);
            return (Atomics.Read(&leaf[page >> 6]) & (1UL << (int)(page & 63))) != 0;
        }

        /// <summary>False for an address outside every heap page ever marked (true does not
        /// mean it is on one: see Contains).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool MayContain(void* address) => (ulong)address >= LowestMarked.Address && (ulong)address < EndOfHighestMarked.Address;

        /// <summary>The bounds MayContain tests.</summary>
        public static ulong Low => LowestMarked.Address;
        public static ulong High => EndOfHighestMarked.Address;

        /// <summary>Marks [start, start+length) as heap pages; false if out of memory.</summary>
        public static bool Mark(void* start, nuint length)
        {
            if (!Update(s_top, start, length, set: true)) return false;
            fixed (ulong* low = &LowestMarked.Address) Atomics.Min(low, (ulong)start);
            fixed (ulong* high = &EndOfHighestMarked.Address) Atomics.Max(high, (ulong)start + length);
            return true;
        }


        public static void Unmark(void* start, nuint length) => Update(s_top, start, length, set: false);

        /// <summary>Marks a new chunk of free-index nodes; false if out of memory.</summary>
        public static bool MarkNodes(void* start, nuint length) => Update(s_nodeTop, start, length, set: true);

        private static bool Update(ulong** top, void* start, nuint length, bool set)
        {
            ulong firstPage = (ulong)start >> PageShift;
            ulong endPage = ((ulong)start + length + OsMemory.PageSize - 1) >> PageShift;
            for (ulong page = firstPage; page < endPage; )
            {
                ulong gig = page >> (GigShift - PageShift);
                ulong* leaf = set ? LeafFor(top, gig) : (ulong*)Atomics.Read((ulong*)&top[gig]);
                if (leaf == null)
                {
                    if (set) return false;
                    Fatal.Die("unmarking pages that were never marked");
                }
                ulong gigEnd = (gig + 1) << (GigShift - PageShift);
                ulong stop = endPage < gigEnd ? endPage : gigEnd;
                for (; page < stop; )
                {
                    ulong index = page & (PagesPerGig - 1);
                    int bit = (int)(index & 63);
                    int count = (int)(stop - page) < 64 - bit ? (int)(stop - page) : 64 - bit;
                    ulong bits = (count == 64 ? ~0UL : ((1UL << count) - 1)) << bit;
                    if (set) Atomics.Or(&leaf[index >> 6], bits);
                    else Atomics.And(&leaf[index >> 6], ~bits);
                    page += (ulong)count;
                }
            }
            return true;
        }

        private static ulong* LeafFor(ulong** top, ulong gig)
        {
            ulong* leaf = (ulong*)Atomics.Read((ulong*)&top[gig]);
            if (leaf != null) return leaf;
            byte* fresh = Mappings.Map(LeafBytes);
            if (fresh == null) return null;
            // Two threads may race to install the same leaf: the loser gives its copy back.
            long won = Interlocked.CompareExchange(ref *(long*)&top[gig], (long)fresh, 0);
            if (won == 0) return (ulong*)fresh;
            Mappings.Unmap(fresh, LeafBytes);
            return (ulong*)won;
        }
    }
}
