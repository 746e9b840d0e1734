// realloc() and reallocarray(), following docs/heap.md ("realloc"): in place
// whenever the block or its free upper neighbour allows, mremap for large
// blocks, and otherwise allocate-copy-free within the block's own arena.

using Konfiscator.Native.Heap;
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
                return Allocation.Allocate(size, Blocks.HeaderBytes, callCounter);
            if (size == 0)
            {
                // glibc frees the block and returns NULL.
                Release.Free(p, "realloc", callCounter, -1);
                return null;
            }
            Heap.Heap.EnsureStarted();
            Block* b = Heap.Heap.Validate("realloc", p);
            if (b->State == Blocks.Large || size >= LargeBlocks.Threshold)
                return ReallocOutsideHeap(p, b, size, callCounter);

            Arena* a = Heap.Heap.ArenaAt(b->Arena);
            uint units = Blocks.UnitsFor(size);
            Heap.Heap.LockArena(a);
            if (b->State != Blocks.Used)
            {
                Heap.Heap.UnlockArena(a);
                Heap.Heap.Validate("realloc", p);
            }
            nuint oldUsable = Blocks.Bytes(b) - Blocks.HeaderBytes;
            Block* result = b;
            if (units <= b->SizeUnits)
                Arenas.Shrink(a, b, units);
            else if (!Arenas.TryGrow(a, b, units))
            {
                result = Arenas.FindFit(a, units);
                if (result == null)
                {
                    a->Stats[callCounter]++;
                    a->Stats[StatsLayout.FailedAllocations]++;
                    Heap.Heap.UnlockArena(a);
                    Libc.SetErrno(Libc.ENOMEM);
                    return null;
                }
                Arenas.Take(a, result, units);
                Libc.memcpy(Blocks.Payload(result), p, oldUsable);
                Arenas.Release(a, b);
            }
            nuint newUsable = Blocks.Bytes(result) - Blocks.HeaderBytes;
            a->Stats[callCounter]++;
            Counting.Freed(a->Stats, oldUsable);
            Counting.Allocated(a->Stats, size, newUsable);
            Arenas.PublishLargest(a);
            Heap.Heap.UnlockArena(a);
            StatsWriter.AddInUse((long)newUsable - (long)oldUsable);
            return Blocks.Payload(result);
        }

        /// <summary>Either side is a large block: mremap when possible, else move.</summary>
        private static void* ReallocOutsideHeap(void* p, Block* b, nuint size, int callCounter)
        {
            nuint oldUsable = Allocation.UsableSize(b);
            if (b->State == Blocks.Large && size >= LargeBlocks.Threshold)
            {
                Block* moved = LargeBlocks.Remap(b, size);
                if (moved != null)
                {
                    nuint newUsable = LargeBlocks.Usable(moved);
                    Arena* a = Heap.Heap.ArenaAt(moved->Arena);
                    Heap.Heap.LockArena(a);
                    a->Stats[callCounter]++;
                    a->LargeBytesInUse += newUsable - oldUsable;
                    Counting.Freed(a->Stats, oldUsable);
                    Counting.Allocated(a->Stats, size, newUsable);
                    Heap.Heap.UnlockArena(a);
                    StatsWriter.AddInUse((long)newUsable - (long)oldUsable);
                    return Blocks.Payload(moved);
                }
            }
            // Allocate anew (counted as this call), copy, and free the old block
            // without counting a free() the program never made.
            void* fresh = Allocation.Allocate(size, Blocks.HeaderBytes, callCounter);
            if (fresh == null) return null;
            Libc.memcpy(fresh, p, oldUsable < size ? oldUsable : size);
            Release.FreeUncounted(p);
            return fresh;
        }
    }
}
