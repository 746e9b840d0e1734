// The heap's memory from the kernel, counted. Platform/OsMemory makes the system
// calls and keeps the unmaps the kernel refused; it sits below the stats and counts
// nothing. Every mapping the heap makes or gives back goes through here instead, so
// that the mmap/munmap counts and the mapped bytes the stats publish are complete.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class Mappings
    {
        /// <summary>Fresh zeroed read-write pages, or null when the kernel says no.</summary>
        public static byte* Map(nuint length, bool noReserve = false)
        {
            RetryDeferred();
            byte* p = OsMemory.Map(length, noReserve);
            if (p != null) StatsWriter.CountMap(length);
            return p;
        }

        /// <summary>Gives a mapping (or a part of one) back; one the kernel refuses stays
        /// mapped and counted until a later retry (OsMemory.Defer).</summary>
        public static void Unmap(void* address, nuint length)
        {
            if (OsMemory.Unmap(address, length)) StatsWriter.CountUnmap(length);
        }

        /// <summary>Fresh zeroed read-write pages at <paramref name="address"/>, inside a
        /// reservation of ours (OsMemory.MapInto).</summary>
        public static byte* MapInto(byte* address, nuint length)
        {
            RetryDeferred();
            byte* p = OsMemory.MapInto(address, length);
            if (p != null) StatsWriter.CountMap(length);
            return p;
        }

        /// <summary>Gives pages inside a reservation back, keeping the addresses reserved;
        /// false when the kernel refuses (then nothing changed: OsMemory.UnmapInto).</summary>
        public static bool UnmapInto(byte* address, nuint length)
        {
            if (!OsMemory.UnmapInto(address, length)) return false;
            StatsWriter.CountUnmap(length);
            return true;
        }

        /// <summary>Gives back part of a mapping we just made (alignment trimming):
        /// the pages were never handed out, so only the byte count changes.</summary>
        public static void Trim(void* address, nuint length)
        {
            if (length == 0) return;
            if (OsMemory.Unmap(address, length)) StatsWriter.CountTrim(length);
        }

        /// <summary>Grows or shrinks a mapping, possibly moving it; null if it cannot.</summary>
        public static byte* Remap(void* address, nuint oldLength, nuint newLength)
        {
            byte* p = OsMemory.Remap(address, oldLength, newLength);
            if (p != null) StatsWriter.CountRemap(oldLength, newLength);
            return p;
        }

        /// <summary>Before each new mapping (when map entries may have come free): the
        /// unmaps the kernel refused are tried again; cheap when there are none.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void RetryDeferred()
        {
            if (OsMemory.HasDeferred) RetryDeferredSlow();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void RetryDeferredSlow()
        {
            int ranges = OsMemory.RetryDeferred(out nuint bytes);
            if (ranges != 0) StatsWriter.CountUnmaps(ranges, bytes);
        }
    }
}
