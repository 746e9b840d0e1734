// ThreadCaches, blocks of other arenas: a small block that a thread frees but
// another thread's arena made is not kept in the freeing thread's bins. It goes
// back to its arena, in chains of up to ForeignBatch blocks (one compare-and-swap
// a chain onto the arena's remote list), where its owner adopts it into its own
// bins at its next refill (ThreadCache.Refill.cs).
//
// Why not cache it where it was freed, as glibc's tcache does: the freeing thread
// would hand it out again and write into it, and a small block shares its cache
// line with its neighbours, which its owner made and is writing into. Two cores
// then take turns owning one line ("passive false sharing", the cache-scratch
// workload: 2-3x slower when two threads' objects met on a line). Sent home, the
// block is reused by the thread that owns its neighbours.
//
// Only for sizes the freeing thread does not allocate itself (ThreadCaches.SendsHome),
// and only while its arena is some live thread's home, though: a block whose owner
// thread ended (a server handing a connection's blocks from one short-lived thread
// to the next) would wait on the remote list of an arena nobody allocates from,
// until a new thread happens to get that arena, while the freeing thread carves
// fresh memory for the same sizes (larson's peak RSS: 8.5 MiB -> 10.5 MiB). Such a
// block is cached where it is freed, as every block was before.

using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        /// <summary>Most blocks a foreign chain collects before it goes home: enough that a
        /// consumer freeing a producer's blocks pays one compare-and-swap per this many, few
        /// enough that the owner sees them soon.</summary>
        public const int ForeignBatch = 64;

        /// <summary>True when block b's arena is the home of a live thread, which will take
        /// the block back (Heap counts them, to hand arenas to new threads): then it goes home. b's header passed its check, so its arena
        /// index names an arena.</summary>
        public static bool OwnerIsLive(Block* b) => Heap.ThreadsAtHome(Blocks.ArenaOf(b)) > 0;

        /// <summary>Whether block b of another arena, of the size of bin
        /// <paramref name="index"/>, goes home rather than into this thread's bin: when its
        /// owner lives and this thread has not yet allocated that size from its own heap (the
        /// bin never refilled). A thread that allocates the size keeps what it frees of it, as
        /// any thread cache does: threads that hand each other blocks in bulk and allocate the
        /// same sizes (a pipeline, a thread pool) reuse them where they are, instead of each
        /// block crossing back to its owner's core (cross-thread: 0.52x glibc that way, 0.9x
        /// sent home). A thread that only frees the size (a consumer), or frees before it ever
        /// allocated it (cache scratch's workers free the object handed to them first), sends
        /// it home.</summary>
        public static bool SendsHome(ThreadCache* tc, nuint index, Block* b) =>
            BinAt(tc, index)->Refills == 0 && OwnerIsLive(b);

        /// <summary>Parks block b (used, or cached in a bin being drained), of an arena other
        /// than the thread's home, in the thread's foreign chain (Cached from now on, so a
        /// second free of it is still caught); the chain goes home when full or when a block
        /// of another arena comes.</summary>
        public static void ParkForeign(ThreadCache* tc, Block* b)
        {
            ushort arena = Blocks.ArenaOf(b);
            if (tc->ForeignCount != 0 && tc->ForeignArena != arena) FlushForeign(tc);
            Blocks.SetState(b, Blocks.Cached);
            FreeLinks.SetNext(b, tc->ForeignHead);
            if (tc->ForeignHead == null) tc->ForeignTail = b;
            tc->ForeignHead = b;
            tc->ForeignArena = arena;
            if (++tc->ForeignCount >= ForeignBatch) FlushForeign(tc);
        }

        /// <summary>Sends the foreign chain to its arena's remote list (one compare-and-swap).
        /// Also at thread exit and before the heap grows (DrainAll, after the bins).</summary>
        public static void FlushForeign(ThreadCache* tc)
        {
            if (tc->ForeignCount == 0) return;
            // ForeignArena was read from a header that passed its check, so it names an arena.
            Arenas.PushRemoteChain(Heap.ArenaAt(tc->ForeignArena), tc->ForeignHead, tc->ForeignTail);
            tc->ForeignHead = tc->ForeignTail = null;
            tc->ForeignCount = 0;
        }
    }
}
