// free() and cfree() past the inlined fast path in Exports: full validation,
// then the thread cache (emptied by half into the heap when full) or the heap of
// the arena the block came from, whichever thread frees it.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Release
    {
        /// <summary>free() from the fast path in Exports of a block on a heap page (the pointer
        /// aligned) that the thread's bins do not take: a plain used block of another arena
        /// (FreeForeign), one of the home arena above the cached sizes (FreeToHeap), anything
        /// else by the general path.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void FreeNotCached(ThreadCache* tc, void* p, Block* b)
        {
            if (Blocks.ArenaAndState(b) == tc->HomeUsedTag)
            {
                // The fast path's remaining checks, for both: a header that fails its check, or a
                // thread counted in the shared slot, takes the general path, which reports or serves it.
                // (A block of a bin's size reaches here only when the fast path's checks failed.)
                if (!Blocks.CheckOkUnsampled(b) || tc->StatsSlot < 0 || b->SizeUnits <= ThreadCaches.MaxUnits)
                    Free(p, "free", StatsLayout.FreeCalls);
                else FreeToHeap(tc, p, b);
            }
            else if (Blocks.IsPlainUsed(b)) FreeForeign(tc, p, b);
            else Free(p, "free", StatsLayout.FreeCalls);
        }

        /// <summary>free() of a plain used block of an arena other than the thread's home,
        /// reached from the fast path in Exports (through FreeNotCached), which checked the pointer's alignment, its
        /// page and its state: the rest of the fast path's checks, then the block goes into
        /// the thread's foreign chain, on its way home (or into the thread's bin when no live
        /// thread is at home there), counted as a free into the cache. Anything else takes
        /// the whole slow path.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void FreeForeign(ThreadCache* tc, void* p, Block* b)
        {
            nuint index = (nuint)b->SizeUnits - ThreadCaches.MinUnits;
            if (index < ThreadCaches.BinCount && ThreadCaches.Enabled && Blocks.CheckOkUnsampled(b) && tc->StatsSlot >= 0)
            {
                if (ThreadCaches.SendsHome(tc, index, b))
                {
                    ThreadCaches.ParkForeign(tc, b);
                }
                else
                {
                    // Nobody will take it back: cached here, as the fast path caches its own.
                    Bin* bin = ThreadCaches.BinAt(tc, index);
                    if (bin->Count >= bin->Capacity) goto slow;
                    ThreadCaches.Push(bin, b);
                }
                if (Counting.FreedToBin(tc, index)) Counting.ReportShrink(tc);
                return;
            }
        slow:
            Free(p, "free", StatsLayout.FreeCalls);
        }

        /// <summary>free() of a plain used block of the thread's home arena larger than the
        /// thread caches' sizes, from the fast path in Exports (through FreeNotCached), which checked the pointer's
        /// alignment, its page, and its header's arena and state (FreeNotCached its header's
        /// check): the block goes into the home arena's heap, merging with its free neighbours,
        /// as the general path (Free) would do it, without looking the thread up again,
        /// validating the pointer a second time or choosing among the other paths
        /// (callgrind, docs/performance/fragmentation.md).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void FreeToHeap(ThreadCache* tc, void* p, Block* b)
        {
            tc->CurrentCall = StatsLayout.FreeCalls;
            nuint usable = Blocks.UsableBytes(b);
            // Held back in the thread's cache (1-32 KiB: Heap/ThreadCache.Classes.cs), or into the heap.
            if (!ThreadCaches.Hold(tc, b))
            {
                Arena* a = tc->Home;
                Heap.LockArena(a);
                // Checked again under the lock: a racing free of the same pointer from another
                // thread may have won (as in Free).
                if (b->State != Blocks.Used) RacedDoubleFree(a, "free", p);
                Arenas.Release(a, b);
                Arenas.PublishLargest(a);
                Heap.UnlockArena(a);
            }
            Counting.Freed(tc, StatsLayout.FreeCalls, usable);
            if (usable >= LargeBlocks.Threshold) ThreadCaches.FlushInUse(tc);
        }

        /// <summary>A block found not in use under its arena's lock, after it was checked
        /// without it: another thread freed the same pointer first. Reported with the message
        /// the check would give it now; should the block have been allocated again between the
        /// two looks (Validate returns), it is still a double free. Does not return.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void RacedDoubleFree(Arena* a, string call, void* p)
        {
            Heap.UnlockArena(a);
            Heap.Validate(call, p);
            Fatal.Misuse(call, "double free", p);
        }

        /// <summary>Frees p on behalf of <paramref name="call"/> (named in error messages),
        /// counting one call under <paramref name="callCounter"/> (none if -1).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Free(void* p, string call, int callCounter)
        {
            Heap.EnsureStarted();
            if (p == null)
            {
                // Nothing to free, so nothing to make either: glibc calls free(NULL) from
                // threads that are past their destructors (Heap/ExitedThreads.cs).
                if (callCounter >= 0) Counting.Call(Heap.PeekCache(), callCounter);
                return;
            }
            // Validated before the thread's cache is made: a thread's first call that frees a
            // block may take over the block's arena (Heap.ClaimIdleArena).
            ThreadCache* tc = Heap.PeekCache();
            if (tc != null) tc->CurrentCall = callCounter >= 0 ? callCounter : StatsLayout.ReallocCalls;
            Block* b = Heap.Validate(call, p, out bool sampled);
            if (tc == null)
            {
                tc = Heap.CurrentCache(b->State == Blocks.Used ? Blocks.ArenaOf(b) : -1);
                if (tc != null) tc->CurrentCall = callCounter >= 0 ? callCounter : StatsLayout.ReallocCalls;
            }
            if (sampled) SampledBlocks.Forget(tc, b);
            nuint usable = Allocation.UsableSize(b);
            if (b->State == Blocks.Large)
            {
                LargeBlocks.Release(b);
            }
            else if (tc != null && ThreadCaches.Enabled && b->SizeUnits <= ThreadCaches.MaxUnits
                     && Blocks.ArenaOf(b) != tc->Home->Index && ThreadCaches.SendsHome(tc, b->SizeUnits - ThreadCaches.MinUnits, b))
            {
                // Another arena's block: home in a chain, not into this thread's bins
                // (Heap/ThreadCache.Foreign.cs says why).
                ThreadCaches.ParkForeign(tc, b);
                ThreadCaches.Count(tc, StatsLayout.CachedBytes, (long)Blocks.Bytes(b));
            }
            else if (tc != null && ThreadCaches.Enabled && b->SizeUnits <= ThreadCaches.MaxUnits)
            {
                Bin* bin = ThreadCaches.BinFor(tc, b->SizeUnits);
                if (bin->Count >= bin->Capacity)
                {
                    ThreadCaches.Drain(tc, bin, bin->Count / 2 + 1);
                    ThreadCaches.Overflowed(tc, bin);
                }
                ThreadCaches.Push(bin, b);
                ThreadCaches.Count(tc, StatsLayout.CachedBytes, (long)Blocks.Bytes(b));
            }
            else if (tc != null && tc->StatsSlot >= 0 && Blocks.ArenaOf(b) == tc->Home->Index && ThreadCaches.Hold(tc, b))
            {
                // Held back in the thread's cache, as the heap free path holds it (a sampled
                // block comes this way; Heap/ThreadCache.Classes.cs).
            }
            else
            {
                Arena* a = Heap.ArenaAt(Blocks.ArenaOf(b));
                if (tc != null && a != tc->Home && !Heap.TryLockArena(a))
                {
                    // Another thread's arena, busy: leave it on the remote list.
                    Arenas.PushRemote(a, b);
                    ThreadCaches.Count(tc, StatsLayout.CachedBytes, (long)Blocks.Bytes(b));
                }
                else
                {
                    if (tc == null || a == tc->Home) Heap.LockArena(a);
                    // Checked again under the lock: a racing free of the same pointer
                    // from another thread may have won.
                    if (b->State != Blocks.Used) RacedDoubleFree(a, call, p);
                    Arenas.Release(a, b);
                    Arenas.PublishLargest(a);
                    Heap.UnlockArena(a);
                }
            }
            Counting.Freed(tc, callCounter, usable);
            if (usable >= LargeBlocks.Threshold && tc != null) ThreadCaches.FlushInUse(tc);
        }
    }
}
