// Arenas, prefaulting: the pages a run for a thread cache is about to write for the
// first time are faulted in by one madvise(MADV_POPULATE_WRITE) instead of one page
// fault each.
//
// Why: the heap grows by carving the bottom of its topmost free block, and a bin's
// refill carves a run of blocks at once and writes every block's header (TakeRun,
// TakeAlignedRun). Once the heap is past what it ever used, each page of the run is
// a page fault: an exception, an entry into the kernel and a return, on top of the
// page's allocation and zeroing. On this project's virtual machine a fault costs
// about 16 us and populating about 10 us a page (docs/performance/memory.md,
// "Prefaulting runs"); on bare metal both are far cheaper and the saving is the
// entries and exits alone.
//
// Only runs: the allocator itself writes a header on every page of a run (a bin's
// blocks are at most 1 040 bytes, an aligned run's at most 1 KiB), so populating it
// makes nothing resident that would not have been. A single block is not: a program
// may use only the start of a large one, and glibc would fault in only what it
// touches. Populating single blocks too, and pages ahead of what a carve writes, was
// tried and not kept: the middle pages of large blocks that a program uses sparsely
// became resident (the working set: +280 KiB of peak RSS).
//
// Each arena remembers the untouched pages of its newest region (mapped or grown:
// Region.cs), [UntouchedLow, UntouchedHigh). A run that reaches above UntouchedLow
// populates from there to its end, in one call, and UntouchedLow moves up. A write
// elsewhere above UntouchedLow (a single block's carve) is not tracked: populating a
// page that is resident already does nothing to it. Populating writes nothing to
// memory and moves no block. Where it cannot work it is not used: a kernel before
// 5.14 (EINVAL), a process under a seccomp filter (a filter may kill the process for
// an madvise advice it does not know; asked before every call, since a program may
// install one at any time), or an error that says the advice is refused; then the
// pages fault in as before. Everything here runs with the arena's lock held.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>UntouchedLow when there is no range: no address is above it, so the
        /// runs' test is one compare.</summary>
        private static byte* NoRange => (byte*)~(nuint)0;

        private static bool s_populateRefused;

        /// <summary>Pages populated so far, all arenas (konfiscator_debug_prefaulted_pages).</summary>
        public static ulong PrefaultedPages;

        /// <summary>The pages of [low, high) were mapped and never written: the range the
        /// next runs populate. A range the arena still had is dropped, unless it ends where
        /// this one begins (the topmost region grew in place): then they are one.</summary>
        public static void UntouchedAdded(Arena* a, byte* low, byte* high)
        {
            byte* from = (byte*)OsMemory.RoundUpToPage((nuint)low);
            byte* to = (byte*)((nuint)high & ~(OsMemory.PageSize - 1));
            // The page between the old range and the new one holds the old end sentinel
            // (written): populating it again costs nothing.
            if (a->UntouchedLow != NoRange && a->UntouchedHigh <= from && a->UntouchedHigh + OsMemory.PageSize >= from)
                from = a->UntouchedLow;
            if (from >= to) { UntouchedDropped(a); return; }
            a->UntouchedLow = from;
            a->UntouchedHigh = to;
        }

        /// <summary>No range: a region went back or shrank (Region.cs), so the range may name
        /// addresses that are no longer the arena's.</summary>
        public static void UntouchedDropped(Arena* a)
        {
            a->UntouchedLow = NoRange;
            a->UntouchedHigh = null;
        }

        /// <summary>Before a run writes its headers up to <paramref name="end"/>: populates the
        /// untouched pages among them. Inlined: one compare when the run is below the range.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void BeforeRunWrites(Arena* a, byte* end)
        {
            if (end > a->UntouchedLow) Populate(a, end);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void Populate(Arena* a, byte* end)
        {
            byte* low = a->UntouchedLow, high = a->UntouchedHigh;
            // A run in another region, above this one's range (the end sentinel's page ends it).
            if (end > high + OsMemory.PageSize) return;
            byte* upTo = (byte*)OsMemory.RoundUpToPage((nuint)end);
            if (upTo > high) upTo = high;
            if (!s_populateRefused && !Libc.UnderSeccomp())
            {
                int saved = Libc.Errno; // the program's errno after its malloc is its own
                if (Libc.madvise(low, (nuint)(upTo - low), Libc.MADV_POPULATE_WRITE) == 0)
                {
                    PrefaultedPages += (ulong)(upTo - low) / OsMemory.PageSize;
                }
                else
                {
                    int e = Libc.Errno;
                    if (e == Libc.EINVAL || e == Libc.EPERM || e == Libc.ENOSYS) s_populateRefused = true;
                }
                Libc.SetErrno(saved);
            }
            if (upTo >= high) UntouchedDropped(a);
            else a->UntouchedLow = upTo;
        }
    }
}
