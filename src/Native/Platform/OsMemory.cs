// Memory from the kernel: mmap, munmap, mremap, and the unmaps the kernel refused,
// kept to be tried again. Nothing here counts: this is the Platform layer, below the
// stats. Each call says what it did (a pointer, true/false, how many ranges a retry
// gave back) so that the caller above counts it: the heap through Heap/Mappings.cs,
// the stats writer for its own few mappings.

using System.Runtime.CompilerServices;

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
            return p == Libc.MAP_FAILED ? null : (byte*)p;
        }

        /// <summary>Pages for the library's own bookkeeping (the sampler's tables and caches):
        /// <paramref name="bytes"/> rounded up to whole pages, reserved lazily (MAP_NORESERVE,
        /// resident only as they are touched); null when the kernel says no. Not the heap's,
        /// and mapped before the stats could count it, so no caller counts it.</summary>
        public static byte* MapBookkeeping(nuint bytes) => Map(RoundUpToPage(bytes), noReserve: true);

        /// <summary>Gives back what MapBookkeeping mapped for <paramref name="bytes"/>. A refusal
        /// leaves it mapped (it is not the heap's to retry and count).</summary>
        public static void UnmapBookkeeping(void* p, nuint bytes) => Libc.munmap(p, RoundUpToPage(bytes));

        /// <summary>Gives a mapping (or a part of one) back: true when it is gone. When the
        /// kernel refuses, it is kept (see Defer) and the answer is false.</summary>
        public static bool Unmap(void* address, nuint length)
        {
            if (Libc.munmap(address, length) == 0) return true;
            Defer(address, length);
            return false;
        }

        // ---- unmapping that the kernel refused ----
        //
        // munmap of part of a mapping splits it in two, which takes a new map entry; a
        // process at vm.max_map_count has none, and munmap fails with ENOMEM (glibc's
        // free ignores that). Stopping the program for it would be worse than keeping
        // the pages: so the memory is given back with madvise(MADV_DONTNEED) (no split
        // needed), the range stays mapped and counted as mapped, and is remembered here;
        // the next time the allocator maps memory (when entries may have come free) it
        // tries the munmap again. Past Capacity remembered ranges the rest stay mapped
        // for good (still without memory behind them).

        private const int DeferredCapacity = 64;
        private struct DeferredTable
        {
            public fixed ulong Address[DeferredCapacity];
            public fixed ulong Length[DeferredCapacity];
        }
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static DeferredTable s_deferred;
#pragma warning restore CS0169, CS0649
        private static int s_deferredCount;

        private static void Defer(void* address, nuint length)
        {
            Libc.madvise(address, length, Libc.MADV_DONTNEED);
            LockDeferred();
            fixed (DeferredTable* t = &s_deferred)
            {
                if (s_deferredCount < DeferredCapacity)
                {
                    t->Address[s_deferredCount] = (ulong)address;
                    t->Length[s_deferredCount] = length;
                    s_deferredCount++;
                }
            }
            UnlockDeferred();
        }

        /// <summary>True while some unmap the kernel refused waits to be tried again (Defer).</summary>
        public static bool HasDeferred
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get { fixed (int* count = &s_deferredCount) return Atomics.Read(count) != 0; }
        }

        /// <summary>Tries again the unmaps the kernel refused (see Defer). Returns how many
        /// ranges went back now, and their bytes in <paramref name="bytes"/>.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static int RetryDeferred(out nuint bytes)
        {
            int unmapped = 0;
            bytes = 0;
            LockDeferred();
            fixed (DeferredTable* t = &s_deferred)
            {
                int kept = 0;
                for (int i = 0; i < s_deferredCount; i++)
                {
                    void* address = (void*)t->Address[i];
                    nuint length = (nuint)t->Length[i];
                    if (Libc.munmap(address, length) == 0)
                    {
                        unmapped++;
                        bytes += length;
                        continue;
                    }
                    t->Address[kept] = (ulong)address;
                    t->Length[kept] = length;
                    kept++;
                }
                s_deferredCount = kept;
            }
            UnlockDeferred();
            return unmapped;
        }

        private static void LockDeferred() { fixed (int* w = &ForkLocks.DeferredUnmaps) FutexLock.Acquire(w); }
        private static void UnlockDeferred() { fixed (int* w = &ForkLocks.DeferredUnmaps) FutexLock.Release(w); }
        public static void LockForFork() => LockDeferred();
        public static void UnlockAfterFork() => UnlockDeferred();
        public static void ResetAfterForkInChild() { fixed (int* w = &ForkLocks.DeferredUnmaps) FutexLock.ResetAfterFork(w); }

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
            return p == Libc.MAP_FAILED ? null : (byte*)p;
        }

        /// <summary>Gives pages inside a reservation back, keeping the addresses reserved.
        /// False when the kernel refuses (no map entry left to split the mapping: see
        /// Defer); then nothing changed and the caller keeps the pages.</summary>
        public static bool UnmapInto(byte* address, nuint length)
        {
            void* p = Libc.mmap(address, length, Libc.PROT_NONE,
                                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE | Libc.MAP_FIXED, -1, 0);
            return p != Libc.MAP_FAILED;
        }



        /// <summary>Makes reserved pages (UnmapInto) readable: they read as zeros, the kernel's
        /// shared zero page, with no memory and no commit charge (they are not writable), and
        /// nothing of them goes into a core dump. In two steps, reserved and then made
        /// readable, because a mapping made readable outright is filled in at once in a
        /// process that locks its future memory (mlockall with MCL_FUTURE): a readable 1 GiB
        /// reservation took 770 ms and 1 GiB of resident memory there; mprotect to PROT_READ
        /// fills nothing in. False when the kernel refuses.</summary>
        public static bool MakeReadable(byte* address, nuint length) =>
            Libc.mprotect(address, length, Libc.PROT_READ) == 0;

        /// <summary>Grows or shrinks a mapping, possibly moving it; null if it cannot.</summary>
        public static byte* Remap(void* address, nuint oldLength, nuint newLength)
        {
            void* p = Libc.mremap(address, oldLength, newLength, Libc.MREMAP_MAYMOVE);
            return p == Libc.MAP_FAILED ? null : (byte*)p;
        }
    }
}
