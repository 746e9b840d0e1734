// free() and cfree(): back to the arena the block came from, whichever thread
// frees it, so the figures of the right arena go down.

using Konfiscator.Native.Heap;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Release
    {
        /// <summary>Frees p on behalf of <paramref name="call"/> (named in error messages),
        /// counting one call under <paramref name="callCounter"/> and, if not -1,
        /// <paramref name="extraCounter"/>.</summary>
        public static void Free(void* p, string call, int callCounter, int extraCounter)
        {
            if (p == null)
            {
                Allocation.CountCall(callCounter, extraCounter);
                return;
            }
            Heap.Heap.EnsureStarted();
            Block* b = Heap.Heap.Validate(call, p);
            Arena* a = Heap.Heap.ArenaAt(b->Arena);
            nuint usable;
            if (b->State == Blocks.Large)
            {
                usable = LargeBlocks.Usable(b);
                Heap.Heap.LockArena(a);
                Count(a, usable, callCounter, extraCounter);
                a->LargeBytesInUse -= usable;
                Heap.Heap.UnlockArena(a);
                LargeBlocks.Release(b);
            }
            else
            {
                Heap.Heap.LockArena(a);
                // Checked again under the lock: a racing free of the same pointer
                // from another thread may have won.
                if (b->State != Blocks.Used)
                {
                    Heap.Heap.UnlockArena(a);
                    Heap.Heap.Validate(call, p);
                }
                usable = Blocks.Bytes(b) - Blocks.HeaderBytes;
                Count(a, usable, callCounter, extraCounter);
                Arenas.Release(a, b);
                Arenas.PublishLargest(a);
                Heap.Heap.UnlockArena(a);
            }
            StatsWriter.AddInUse(-(long)usable);
        }

        /// <summary>Frees a block realloc moved away from: its bytes count as freed,
        /// but no free() call was made.</summary>
        public static void FreeUncounted(void* p)
        {
            Block* b = Heap.Heap.Validate("realloc", p);
            Arena* a = Heap.Heap.ArenaAt(b->Arena);
            nuint usable;
            Heap.Heap.LockArena(a);
            if (b->State == Blocks.Large)
            {
                usable = LargeBlocks.Usable(b);
                a->LargeBytesInUse -= usable;
                Counting.Freed(a->Stats, usable);
                Heap.Heap.UnlockArena(a);
                LargeBlocks.Release(b);
            }
            else
            {
                usable = Blocks.Bytes(b) - Blocks.HeaderBytes;
                Counting.Freed(a->Stats, usable);
                Arenas.Release(a, b);
                Arenas.PublishLargest(a);
                Heap.Heap.UnlockArena(a);
            }
            StatsWriter.AddInUse(-(long)usable);
        }

        private static void Count(Arena* a, nuint usable, int callCounter, int extraCounter)
        {
            a->Stats[callCounter]++;
            if (extraCounter >= 0) a->Stats[extraCounter]++;
            Counting.Freed(a->Stats, usable);
        }
    }
}
