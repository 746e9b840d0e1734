// The allocating half of the API: one routine places every request (malloc,
// calloc, the aligned family), in the calling thread's arena or, when large, in a
// mapping of its own. Counting happens under the same lock as the placement.

using Konfiscator.Native.Heap;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Allocation
    {
        /// <summary>Allocates <paramref name="size"/> bytes aligned to <paramref name="alignment"/>
        /// (a power of two); counts the call under <paramref name="callCounter"/>. Null and
        /// ENOMEM when there is no memory.</summary>
        public static void* Allocate(nuint size, nuint alignment, int callCounter)
        {
            Heap.Heap.EnsureStarted();
            Arena* a = Heap.Heap.ThreadArena();
            Block* b;
            nuint usable;
            if (size >= LargeBlocks.Threshold || alignment > LargeBlocks.MaxHeapAlignment)
            {
                // mmap outside the lock; only the counting needs it.
                b = LargeBlocks.Allocate(size, alignment < 16 ? 16 : alignment, a->Index);
                usable = b == null ? 0 : LargeBlocks.Usable(b);
                Heap.Heap.LockArena(a);
                a->Stats[callCounter]++;
                if (b != null)
                {
                    a->LargeBytesInUse += usable;
                    Counting.Allocated(a->Stats, size, usable);
                }
            }
            else
            {
                uint units = Blocks.UnitsFor(size);
                Heap.Heap.LockArena(a);
                a->Stats[callCounter]++;
                if (alignment <= Blocks.HeaderBytes)
                {
                    b = Arenas.FindFit(a, units);
                    if (b != null) Arenas.Take(a, b, units);
                }
                else
                {
                    b = Arenas.TakeAligned(a, units, alignment);
                }
                usable = b == null ? 0 : Blocks.Bytes(b) - Blocks.HeaderBytes;
                if (b != null) Counting.Allocated(a->Stats, size, usable);
                Arenas.PublishLargest(a);
            }
            if (b == null)
            {
                a->Stats[StatsLayout.FailedAllocations]++;
                Heap.Heap.UnlockArena(a);
                Libc.SetErrno(Libc.ENOMEM);
                return null;
            }
            Heap.Heap.UnlockArena(a);
            StatsWriter.AddInUse((long)usable);
            return Blocks.Payload(b);
        }

        /// <summary>Counts a call that failed before reaching the heap (bad arguments, overflow).</summary>
        public static void CountFailure(int callCounter, bool outOfMemory)
        {
            Heap.Heap.EnsureStarted();
            Arena* a = Heap.Heap.ThreadArena();
            Heap.Heap.LockArena(a);
            a->Stats[callCounter]++;
            if (outOfMemory) a->Stats[StatsLayout.FailedAllocations]++;
            Heap.Heap.UnlockArena(a);
        }

        /// <summary>Counts a call that touches no block (free(NULL), malloc_usable_size(NULL)).</summary>
        public static void CountCall(int callCounter, int alsoCounter = -1)
        {
            Heap.Heap.EnsureStarted();
            Arena* a = Heap.Heap.ThreadArena();
            Heap.Heap.LockArena(a);
            a->Stats[callCounter]++;
            if (alsoCounter >= 0) a->Stats[alsoCounter]++;
            Heap.Heap.UnlockArena(a);
        }

        public static nuint UsableSize(Block* b) =>
            b->State == Blocks.Large ? LargeBlocks.Usable(b) : Blocks.Bytes(b) - Blocks.HeaderBytes;
    }
}
