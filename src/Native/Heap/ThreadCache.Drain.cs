// ThreadCaches, draining: cached blocks go back to the heap (a bin that
// overflowed, thread exit, a heap about to grow, a failed mapping), sorted by
// address and joined into runs first, so that the heap coalesces few large
// pieces instead of many neighbours one by one. Apart from the bins' push and pop
// because it takes arena locks and is never on a fast path.

using System.Runtime.CompilerServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        /// <summary>Every cached block back to the heap (thread exit, and a failed mapping:
        /// cached blocks would keep their regions from going back to the OS).</summary>
        public static void DrainAll(ThreadCache* tc)
        {
            for (uint units = MinUnits; units <= MaxUnits; units++)
                Drain(tc, BinFor(tc, units), 0xFFFFFFFF);
        }

        /// <summary>Returns up to <paramref name="count"/> blocks of a bin: those of other
        /// arenas onto their remote lists, where their owners pick them up (see Refill),
        /// those of the thread's home arena into its heap, under one lock, in address
        /// order, and with runs of neighbouring blocks joined before they reach the
        /// index (a bin returns its blocks newest first, which would otherwise make every
        /// one of them merge with its upper neighbour, the index's dearest case).</summary>
        public static void Drain(ThreadCache* tc, Bin* bin, uint count)
        {
            Arena* home = tc->Home;
            ulong* sorted = tc->Scratch;
            int n = 0;
            ulong returnedBytes = 0;
            long returned = 0;
            // Consecutive blocks of one other arena go over as one chain (one CAS).
            Arena* chainArena = null;
            Block* chainHead = null, chainTail = null;
            uint units = (uint)(bin - &tc->FirstBin) + MinUnits;
            int call = tc->CurrentCall;
            while (count-- > 0 && bin->Head != null)
            {
                Block* b = bin->Head;
                if (b->SizeUnits != units) FreeLinks.Corrupted(call, b);
                FreeLinks.CheckCached(b, call);
                bin->Head = FreeLinks.Next(b, call);
                bin->Count--;
                Arena* a = Heap.ArenaAt(b->Arena);
                if (a == home)
                {
                    returnedBytes += Blocks.Bytes(b);
                    returned++;
                    sorted[n++] = (ulong)b;
                    if (n == ScratchBlocks) { ReleaseSorted(home, sorted, n); n = 0; }
                    continue;
                }
                if (a != chainArena)
                {
                    if (chainHead != null) Arenas.PushRemoteChain(chainArena, chainHead, chainTail);
                    chainArena = a;
                    chainHead = null;
                }
                FreeLinks.SetNext(b, null);
                if (chainHead == null) chainHead = b; else FreeLinks.SetNext(chainTail, b);
                chainTail = b;
            }
            if (chainHead != null) Arenas.PushRemoteChain(chainArena, chainHead, chainTail);
            if (n > 0) ReleaseSorted(home, sorted, n);
            Returned(tc, returnedBytes, returned);
        }

        /// <summary>Counts blocks a cache gave back to the heap.</summary>
        private static void Returned(ThreadCache* tc, ulong bytes, long blocks)
        {
            if (blocks == 0) return;
            Count(tc, StatsLayout.CachedBytes, -(long)bytes);
            Count(tc, StatsLayout.CacheReturnBlocks, blocks);
        }

        /// <summary>Sorts n Cached blocks of arena a by address, joins physical runs, and
        /// frees each run into the heap under one lock.</summary>
        private static void ReleaseSorted(Arena* a, ulong* blocks, int n)
        {
            Heap.LockArena(a);
            ReleaseSortedLocked(a, blocks, n);
            Arenas.PublishLargest(a);
            Heap.UnlockArena(a);
        }

        /// <summary>Below this many cached bytes a thread keeps its blocks even when its
        /// heap is about to grow (ReturnCachedLocked): not worth a pass over the bins.</summary>
        private const ulong ReturnMinBytes = 64 << 10;

        /// <summary>With home arena a's lock held, when a search found no fit there and a
        /// region is about to be mapped: the calling thread's cached blocks of that arena
        /// go back into the heap (sorted, joined, coalesced), so that big bins never make
        /// the heap grow. True when any went back.</summary>
        public static bool ReturnCachedLocked(Arena* a)
        {
            ThreadCache* tc = Heap.PeekCache();
            if (tc == null || tc->Home != a || !s_enabled) return false;
            ulong held = 0;
            for (uint units = MinUnits; units <= MaxUnits; units++)
                held += (ulong)BinFor(tc, units)->Count * (units << Blocks.UnitShift);
            if (held < ReturnMinBytes) return false;
            ulong* sorted = tc->Scratch;
            bool any = false;
            ulong returnedBytes = 0;
            long returned = 0;
            int call = tc->CurrentCall;
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                Block* keep = null;   // blocks of other arenas stay cached
                uint kept = 0;
                int n = 0;
                while (bin->Head != null)
                {
                    Block* b = bin->Head;
                    if (b->SizeUnits != units) FreeLinks.Corrupted(call, b);
                    FreeLinks.CheckCached(b, call);
                    bin->Head = FreeLinks.Next(b, call);
                    bin->Count--;
                    if (b->Arena != a->Index)
                    {
                        FreeLinks.SetNext(b, keep);
                        keep = b;
                        kept++;
                        continue;
                    }
                    sorted[n++] = (ulong)b;
                    if (n == ScratchBlocks) { ReleaseSortedLocked(a, sorted, n); n = 0; }
                    any = true;
                    returnedBytes += Blocks.Bytes(b);
                    returned++;
                }
                if (n > 0) ReleaseSortedLocked(a, sorted, n);
                bin->Head = keep;
                bin->Count = kept;
            }
            Returned(tc, returnedBytes, returned);
            return any;
        }

        private static void ReleaseSortedLocked(Arena* a, ulong* blocks, int n)
        {
            SortAddresses(blocks, n);
            ulong* s = a->Stats;
            int start = 0;
            while (start < n)
            {
                Block* run = (Block*)blocks[start];
                uint units = run->SizeUnits;
                int next = start + 1;
                // Join the blocks that follow run directly in memory: they become its
                // payload, so no header of theirs may survive (Retire), and each join is
                // a coalesce like any other.
                while (next < n && (Block*)blocks[next] == (Block*)((byte*)run + ((nuint)units << Blocks.UnitShift)))
                {
                    Block* joined = (Block*)blocks[next];
                    units += joined->SizeUnits;
                    Blocks.Retire(joined);
                    s[StatsLayout.Coalesces]++;
                    next++;
                }
                if (units != run->SizeUnits)
                {
                    Blocks.Set(run, units, a->Index, Blocks.Used);
                    Blocks.SetPrev(Blocks.Next(run), units, free: false);
                }
                Blocks.SetState(run, Blocks.Used);
                Arenas.Release(a, run);
                start = next;
            }
        }

        /// <summary>Sorts n (at most ScratchBlocks) addresses, ascending. A bin often hands
        /// its blocks back in exactly ascending or descending address order (a size freed
        /// in the order it was carved, or the reverse): one pass finds out, and those take
        /// O(n). Anything else gets a Shell sort with Ciura's gaps (a plain insertion sort
        /// would take up to n²/2 moves).</summary>
        private static void SortAddresses(ulong* a, int n)
        {
            bool ascending = true, descending = true;
            for (int i = 1; i < n; i++)
            {
                if (a[i - 1] > a[i]) ascending = false;
                else descending = false;
            }
            if (ascending) return;
            if (descending)
            {
                for (int i = 0, j = n - 1; i < j; i++, j--) { ulong t = a[i]; a[i] = a[j]; a[j] = t; }
                return;
            }
            for (int g = 0; g < 5; g++)
            {
                int gap = g == 0 ? 57 : g == 1 ? 23 : g == 2 ? 10 : g == 3 ? 4 : 1;
                for (int i = gap; i < n; i++)
                {
                    ulong key = a[i];
                    int j = i;
                    while (j >= gap && a[j - gap] > key) { a[j] = a[j - gap]; j -= gap; }
                    a[j] = key;
                }
            }
        }
    }
}
