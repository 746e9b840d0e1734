// Arenas, purging: the inner pages of cold large free blocks go back to the OS
// (madvise), still mapped. Apart from free because it runs on its own clock (a
// pass every so often), not on every call.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>Free blocks of at least this many units give their inner pages back (Purge).</summary>
        private const uint PurgeMinUnits = (64 << 10) >> Blocks.UnitShift;
        /// <summary>A purge pass runs once this much has been freed since the last one…</summary>
        private const ulong PurgeStepBytes = 1 << 20;
        /// <summary>…and at least this long after it.</summary>
        private const long PurgeIntervalMs = 50;
        /// <summary>When a MiB was freed sooner than that, the clock is read again after this
        /// much more has been freed (so a pass may start up to this much later than it could).</summary>
        private const ulong PurgeRecheckBytes = 64 << 10;
        /// <summary>A free block's purge marks (Blocks.PurgeMarks).</summary>
        private const byte MarkAged = 1, MarkPurged = 2;

        /// <summary>Gives the inner pages of cold free blocks back to the OS (madvise
        /// MADV_DONTNEED: still mapped, no longer resident, zero pages on the next touch).
        /// A pass runs at most every 50 ms, once a MiB has been freed since the last. A free
        /// block of 64 KiB or more is marked aged by one pass and purged by the next if it
        /// has not changed since (any change to a block clears its marks), so memory that
        /// is reused soon is not purged only to be faulted in again, and the system calls
        /// are few.</summary>
        private static void Purge(Arena* a)
        {
            long now = Clock.CoarseMilliseconds();
            if (now - a->LastPurgeMs < PurgeIntervalMs)
            {
                // Too early: look at the clock again after another PurgeRecheckBytes of frees,
                // not on every free from now on (a program freeing a MiB in less than 50 ms
                // read the clock on most of its frees: 60 instructions each, on the
                // fragmentation mix 2% of the allocator's, docs/performance/fragmentation.md).
                a->DirtyBytes = PurgeStepBytes - PurgeRecheckBytes;
                return;
            }
            a->LastPurgeMs = now;
            a->DirtyBytes = 0;
            PurgeBelow(a, a->NodeRoot);
        }

        private static void PurgeBelow(Arena* a, Node* n)
        {
            if (FreeIndex.SubtreeMax(n) < PurgeMinUnits) return;
            PurgeBelow(a, n->Left);
            Block* b = n->Block;
            byte* marks = Blocks.PurgeMarks(b);
            if (n->Size >= PurgeMinUnits && (*marks & MarkPurged) == 0)
            {
                if ((*marks & MarkAged) == 0) *marks |= MarkAged;
                else ReleasePages(b);
            }
            PurgeBelow(a, n->Right);
        }

        /// <summary>madvise(MADV_DONTNEED) on free block b's inner pages: still mapped,
        /// no longer resident. The header and the node pointer (the first 32 bytes) stay,
        /// and nothing past the block's end is touched.</summary>
        private static void ReleasePages(Block* b)
        {
            nuint first = OsMemory.RoundUpToPage((nuint)b + Blocks.MinBytes);
            nuint end = ((nuint)b + Blocks.Bytes(b)) & ~(OsMemory.PageSize - 1);
            if (end > first) Libc.madvise((void*)first, end - first, Libc.MADV_DONTNEED);
            *Blocks.PurgeMarks(b) |= MarkPurged;
        }
    }
}
