// An arena: a lock, the regions it owns and the free index over their free
// blocks. Everything in Arenas runs with the arena's lock held (except the remote
// pushes, which exist for when it is taken); the entry points in Api/ take and
// release it. Placement follows docs/heap.md to the letter: address-ordered first
// fit, allocation at the low end of the chosen block, immediate coalescing with
// both neighbours on free.
//
// This file holds the arena's struct and what is common to all; each concern of
// Arenas has a file of its own:
//   Arena.Placement.cs         first fit, carving a block or a run of blocks
//   Arena.AlignedPlacement.cs  memalign and friends: where an aligned block goes
//   Arena.Release.cs           free: coalescing, giving wholly free regions back
//   Arena.Purge.cs             giving cold free pages back (madvise)
//   Arena.RemoteFrees.cs       frees from threads that found the lock taken
//   Arena.Resize.cs            realloc in place: shrinking, growing into a neighbour

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Arena
    {
        // 144 bytes (Stride 192): the small fields fill what would be padding.
        public int Lock;               // FutexLock word
        public ushort Index;
        public bool SpanTried;         // the reservation below was asked for
        public byte MapCountdown;      // slow-path unlocks until the heap map looks at the clock (HeapMap)
        public int EmptyRegions;       // wholly free regions kept mapped
        public uint SpanPages;         // the reservation's length in pages (less once its unused tail went back: TrimForRetry)
        public Node* NodeRoot;         // free index (FreeIndex): root node
        public Node* NodeFree;         //   released nodes, linked through Left
        public byte* NodeChunk;        //   where new nodes are carved from
        public nuint NodeChunkLeft;
        public ulong NodeDraws;        //   priorities drawn
        public byte* SpanBase;         // the arena's address-space reservation for regions (Regions)
        public nuint SpanUsed;
        public Region* Regions;        // address order
        public nuint NextRegionBytes;
        public ulong* Stats;           // this arena's slot in the stats segment
        public Block* Remote;          // blocks freed by threads that found the lock taken (see PushRemote)
        public ulong DirtyBytes;       // bytes freed since the last purge pass, or since a look at the clock found it too early (see Purge)
        public long LastPurgeMs;       // when the last purge pass ran (CLOCK_MONOTONIC_COARSE)
        public long MapDueMs;          // when the arena's heap-map section may be rebuilt next (HeapMap)
        public byte* UntouchedLow;     // pages of the newest region never written yet (Arena.Prefault.cs):
        public byte* UntouchedHigh;    //   [UntouchedLow, UntouchedHigh), page-aligned; Low = NoRange for none
    }

    internal static unsafe partial class Arenas
    {
        /// <summary>Each arena gets three cache lines of its own, so arenas never share one.</summary>
        public const int Stride = 192;
        /// <summary>One wholly free region per arena stays mapped to absorb churn.</summary>
        public const int RetainedEmptyRegions = 1;

        /// <summary>Publishes the arena's largest free block (the index keeps it exact).
        /// Inlined: every heap call ends with it, and it is three loads and a store.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void PublishLargest(Arena* a) =>
            a->Stats[StatsLayout.LargestFreeBlock] = (ulong)FreeIndex.Largest(a) << Blocks.UnitShift;
    }
}
