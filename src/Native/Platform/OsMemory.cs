// Memory from the kernel. Every mapping the allocator makes goes through here so
// that the mmap/munmap counts and mapped bytes it publishes are complete.

using Konfiscator.Native.Stats;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class OsMemory
    {
        public const nuint PageSize = 4096;

        public static nuint RoundUpToPage(nuint n) => (n + PageSize - 1) & ~(PageSize - 1);

        /// <summary>Fresh zeroed read-write pages, or null when the kernel says no.</summary>
        public static byte* Map(nuint length, bool noReserve = false)
        {
            int flags = Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | (noReserve ? Libc.MAP_NORESERVE : 0);
            void* p = Libc.mmap(null, length, Libc.PROT_READ | Libc.PROT_WRITE, flags, -1, 0);
            if (p == Libc.MAP_FAILED)
                return null;
            StatsWriter.CountMap(length);
            return (byte*)p;
        }

        public static void Unmap(void* address, nuint length)
        {
            if (Libc.munmap(address, length) != 0)
                Fatal.Die("munmap failed on the allocator's own mapping");
            StatsWriter.CountUnmap(length);
        }

        /// <summary>Reserves address space only (no memory, no commit charge): the heap's
        /// regions are later mapped into it in order (MapInto). Not counted as mapped.</summary>
        public static byte* Reserve(nuint length)
        {
            void* p = Libc.mmap(null, length, Libc.PROT_NONE,
                                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
            return p == Libc.MAP_FAILED ? null : (byte*)p;
        }

        /// <summary>Fresh zeroed read-write pages at <paramref name="address"/>, inside a
        /// reservation of ours (MAP_FIXED replaces the reserved pages there).</summary>
        public static byte* MapInto(byte* address, nuint length)
        {
            void* p = Libc.mmap(address, length, Libc.PROT_READ | Libc.PROT_WRITE,
                                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_FIXED, -1, 0);
            if (p == Libc.MAP_FAILED) return null;
            StatsWriter.CountMap(length);
            return (byte*)p;
        }

        /// <summary>Gives pages inside a reservation back, keeping the addresses reserved.</summary>
        public static void UnmapInto(byte* address, nuint length)
        {
            void* p = Libc.mmap(address, length, Libc.PROT_NONE,
                                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE | Libc.MAP_FIXED, -1, 0);
            if (p == Libc.MAP_FAILED) Fatal.Die("cannot return a region to its reservation");
            StatsWriter.CountUnmap(length);
        }

        /// <summary>Gives back part of a mapping we just made (alignment trimming):
        /// the pages were never handed out, so only the byte count changes.</summary>
        public static void Trim(void* address, nuint length)
        {
            if (length == 0) return;
            if (Libc.munmap(address, length) != 0)
                Fatal.Die("munmap failed while trimming a new mapping");
            StatsWriter.CountTrim(length);
        }

        /// <summary>Grows or shrinks a mapping, possibly moving it; null if it cannot.</summary>
        public static byte* Remap(void* address, nuint oldLength, nuint newLength)
        {
            void* p = Libc.mremap(address, oldLength, newLength, Libc.MREMAP_MAYMOVE);
            if (p == Libc.MAP_FAILED)
                return null;
            StatsWriter.CountRemap(oldLength, newLength);
            return (byte*)p;
        }
    }
}
