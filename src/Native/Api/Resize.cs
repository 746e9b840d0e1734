// realloc() and reallocarray(), following docs/heap.md ("realloc"): in place
// whenever the block or its free upper neighbour allows, mremap for large
// blocks, and otherwise allocate-copy-free within the block's own arena.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Resize
    {
        public static void* Realloc(void* p, nuint size, int callCounter)
        {
            if (p == null)
                return Allocation.AllocateAs(size, callCounter);   // malloc, counted as this call
            if (size == 0)
            {
                // glibc frees the block and returns NULL.
                Release.Free(p, "realloc", callCounter);
                return null;
            }
            Heap.EnsureStarted();
            ThreadCache* tc = Heap.CurrentCache();
            if (tc != null) tc->CurrentCall = callCounter;
            Block* b = Heap.Validate("realloc", p, out bool sampled);
            // Sampling: an unsampled block counts down only its growth, and a sampled one keeps
            // its sample (new size, new address) when it is resized by the heap: its bytes were
            // counted down as they came, so a buffer grown by many reallocs is sampled as one
            // malloc of its final size would be. A block that moves by malloc-copy-free is
            // counted down (and its sample removed by the free) as those calls would be.
            nuint before = Allocation.UsableSize(b);
            nuint growth = size > before ? size - before : 0;
            nuint charge = sampled ? size : growth;
            if (b->State == Blocks.Large || size >= LargeBlocks.Threshold)
                return ReallocOutsideHeap(tc, p, b, size, callCounter, sampled, growth);

            uint units = Blocks.UnitsFor(size);
            if (units <= b->SizeUnits && b->SizeUnits - units < Blocks.MinUnits)
            {
                // Fits already, and too little would be left to split off: nothing
                // to do, and no lock to take (only the owner changes a used block's size).
                nuint usable = Blocks.UsableBytes(b);
                Counting.Freed(tc, -1, usable);
                Counting.Allocated(tc, callCounter, size, usable);
                return Resized(tc, (ulong)p, b, size, sampled, growth);
            }
            if (tc != null && ThreadCaches.Enabled && units > b->SizeUnits && units <= ThreadCaches.MaxUnits &&
                Blocks.Next(b)->State != Blocks.Free)
            {
                // No free upper neighbour to grow into (read without the lock: only a
                // hint; the heap path below checks again under it). A small block then
                // moves through the thread cache (a new block from it, the old one into
                // it), with no lock and no search, as a malloc, copy and free would.
                void* moved = MoveThroughCache(tc, p, b, size, callCounter, charge, sampled);
                if (moved != null) return moved;
                moved = Allocation.Allocate(size, Blocks.HeaderBytes, callCounter, charge);
                if (moved == null) return null;
                Libc.memcpy(moved, p, Blocks.UsableBytes(b));
                Release.Free(p, "realloc", -1);
                return moved;
            }
            Arena* a = Heap.ArenaAt(Blocks.ArenaOf(b));
            Heap.LockArena(a);
            if (b->State != Blocks.Used)
            {
                Heap.UnlockArena(a);
                Heap.Validate("realloc", p);
                // Validate returned: the block was allocated again between the two looks.
                // Still a use after free, and the lock is no longer held: stop.
                Fatal.Misuse("realloc", "pointer already freed", p);
            }
            nuint oldUsable = Blocks.UsableBytes(b);
            Block* result = b;
            if (units <= b->SizeUnits)
                Arenas.Shrink(a, b, units);
            else if (!Arenas.TryGrow(a, b, units))
            {
                // It must move: take an eighth more than asked, so that a buffer grown
                // by small appends moves a few times, not at every append (the slack
                // shows in malloc_usable_size).
                uint moveUnits = Blocks.UnitsFor(size + size / 8);
                result = Arenas.FindFit(a, moveUnits);
                if (result == null)
                {
                    // No room and no new region: malloc (which trims and retries once when
                    // the OS refuses), copy, free.
                    Heap.UnlockArena(a);
                    void* fresh = Allocation.Allocate(size, Blocks.HeaderBytes, callCounter, charge);
                    if (fresh == null) return null;
                    Libc.memcpy(fresh, p, oldUsable);
                    Release.Free(p, "realloc", -1);
                    return fresh;
                }
                result = Arenas.Take(a, result, moveUnits);
                Libc.memcpy(Blocks.Payload(result), p, oldUsable);
                Arenas.Release(a, b);
            }
            nuint newUsable = Blocks.UsableBytes(result);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
            Counting.Freed(tc, -1, oldUsable);
            Counting.Allocated(tc, callCounter, size, newUsable);
            return Resized(tc, (ulong)p, result, size, sampled, growth);
        }

        /// <summary>Moves a small used block <paramref name="b"/> (validated, of a cached size) to a
        /// block of the thread's cache for <paramref name="size"/> and an eighth more, as a move
        /// in the heap takes (the slack keeps a buffer grown by small appends from moving at
        /// every append; within the cached sizes), and parks the old block in its bin. What
        /// malloc, memcpy and free would do, without their entry paths and the second
        /// validation: sqlite's reallocs (a record grown 32, 48, 64, 80, 96 bytes) took 570
        /// instructions each, glibc's 250. <paramref name="sampled"/>: what the validation said of
        /// b. Null when the bin is empty and its refill found no memory: the caller allocates the
        /// slow way, which trims and retries.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void* MoveThroughCache(ThreadCache* tc, void* p, Block* b, nuint size, int callCounter, nuint charge, bool sampled)
        {
            uint units = Blocks.UnitsFor(size + size / 8);
            if (units > ThreadCaches.MaxUnits) units = ThreadCaches.MaxUnits;   // the caller's test: size itself fits
            Bin* bin = ThreadCaches.BinFor(tc, units);
            Block* fresh = ThreadCaches.Pop(bin, units, callCounter);
            if (fresh != null) ThreadCaches.Count(tc, StatsLayout.CachedBytes, -(long)Blocks.Bytes(fresh));
            else if ((fresh = ThreadCaches.Refill(tc, bin, units)) == null) return null;
            nuint oldUsable = Blocks.UsableBytes(b);
            Libc.memcpy(Blocks.Payload(fresh), p, oldUsable);
            Counting.Allocated(tc, callCounter, size, Blocks.UsableBytes(fresh));
            // The old block into its bin when it is an ordinary block of this thread's home arena
            // and the bin has room, as free's fast path parks it; anything else (a full bin to
            // drain, another arena's block, a sampled one) the whole free path.
            Bin* old = ThreadCaches.BinFor(tc, b->SizeUnits);
            if (Blocks.ArenaOf(b) == tc->Home->Index && !sampled && old->Count < old->Capacity)
            {
                ThreadCaches.Push(old, b);
                ThreadCaches.Count(tc, StatsLayout.CachedBytes, (long)Blocks.Bytes(b));
                Counting.Freed(tc, -1, oldUsable);
            }
            else
            {
                Release.Free(p, "realloc", -1);
            }
            return SampledBlocks.ChargeGrowth(tc, fresh, charge, size);
        }

        /// <summary>The heap resized the block (in place or within its arena) to <paramref name="b"/>:
        /// a sample follows it, an unsampled block counts down its growth.</summary>
        private static byte* Resized(ThreadCache* tc, ulong oldPayload, Block* b, nuint size, bool sampled, nuint growth)
        {
            if (sampled) return SampledBlocks.Moved(tc, oldPayload, b, size);
            return tc != null ? SampledBlocks.ChargeGrowth(tc, b, growth, size) : Blocks.Payload(b);
        }

        /// <summary>Either side is a large block: mremap when possible, else move.</summary>
        private static void* ReallocOutsideHeap(ThreadCache* tc, void* p, Block* b, nuint size, int callCounter, bool sampled, nuint growth)
        {
            nuint oldUsable = Allocation.UsableSize(b);
            if (b->State == Blocks.Large && size >= LargeBlocks.Threshold)
            {
                Block* moved = LargeBlocks.Remap(b, size);
                if (moved != null)
                {
                    Counting.Freed(tc, -1, oldUsable);
                    Counting.Allocated(tc, callCounter, size, LargeBlocks.Usable(moved));
                    if (tc != null) ThreadCaches.FlushInUse(tc);
                    return Resized(tc, (ulong)p, moved, size, sampled, growth);
                }
            }
            // Allocate anew (counted as this call), copy, and free the old block
            // without counting a free() the program never made.
            void* fresh = Allocation.Allocate(size, Blocks.HeaderBytes, callCounter, sampled ? size : growth);
            if (fresh == null) return null;
            Libc.memcpy(fresh, p, oldUsable < size ? oldUsable : size);
            Release.Free(p, "realloc", -1);
            return fresh;
        }
    }
}
