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
            ReleaseAllHeld(tc);
            // Last: the drains may have added blocks of other arenas to the chain.
            FlushForeign(tc);
        }

        /// <summary>Returns up to <paramref name="count"/> blocks of a bin: those of other
        /// arenas into the thread's foreign chain, on its way to their remote lists, where
        /// their owners pick them up (ThreadCache.Foreign.cs, Refill),
        /// those of the thread's home arena into its heap, under one lock, in address
        /// order, and with runs of neighbouring blocks joined before they reach the
        /// index (a bin returns its blocks newest first, which would otherwise make every
        /// one of them merge with its upper neighbour, the index's dearest case).</summary>
        public static void Drain(ThreadCache* tc, Bin* bin, uint count)
        {
            Arena* home = tc->Home;
            ulong* taken = tc->Scratch;
            ushort homeIndex = home->Index;
            uint units = (uint)(bin - BinAt(tc, 0)) + MinUnits;
            long returned = 0;
            // A scratch-full at a time: popped and checked first (TakeChecked, a loop
            // short enough to keep its values in registers), then, only if some belong to
            // other arenas, those set aside (Partition), and the rest freed into the heap.
            while (count > 0)
            {
                uint others = 0;
                int got = TakeChecked(bin, units, taken, count < ScratchBlocks ? (int)count : ScratchBlocks, homeIndex, &others);
                if (got == 0) break;
                count -= (uint)got;
                int n = others == 0 ? got : Partition(tc, taken, got, homeIndex);
                if (n > 0) ReleaseSorted(home, taken, n);
                returned += n;
            }
            Returned(tc, (ulong)returned * ((ulong)units << Blocks.UnitShift), returned);
        }

        /// <summary>Keeps the blocks of the home arena at the front of <paramref name="taken"/>
        /// (returns how many) and parks the others in the thread's foreign chain.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static int Partition(ThreadCache* tc, ulong* taken, int got, ushort homeIndex)
        {
            int n = 0;
            for (int i = 0; i < got; i++)
            {
                Block* b = (Block*)taken[i];
                if (Blocks.ArenaOf(b) == homeIndex) taken[n++] = (ulong)b;
                else ParkForeign(tc, b);
            }
            return n;
        }

        /// <summary>Pops up to <paramref name="most"/> blocks off a bin of <paramref name="units"/>
        /// into <paramref name="into"/>, each checked as Pop checks it (and its size too, as
        /// a drain has always done); returns how many, and in <paramref name="others"/> non-zero
        /// when any belongs to an arena other than the home arena.</summary>
        private static int TakeChecked(Bin* bin, uint units, ulong* into, int most, ushort homeIndex, uint* others)
        {
            Block* b = bin->Head;
            int n = 0;
            uint foreign = 0;
            // A failed check leaves the loop (a call inside it would make ILC keep the
            // loop's values in saved registers and on the stack).
            while (n < most && b != null)
            {
                if (b->SizeUnits != units || b->State != Blocks.Cached) goto corrupted;
                Block* next = FreeLinks.UncheckedNext(b);
                // FreeLinks.IsPlausibleNext, spelt out as branches.
                if (next != null)
                {
                    if (((nuint)next & 15) != 0) goto corrupted;
                    if ((ulong)next < PageMap.Low || (ulong)next >= PageMap.High) goto corrupted;
                }
                foreign |= (uint)(Blocks.ArenaOf(b) ^ homeIndex);
                into[n++] = (ulong)b;
                b = next;
            }
            bin->Head = b;
            bin->Count -= (uint)n;
            *others = foreign;
            return n;
        corrupted:
            DrainCorrupted(b);
            return 0;
        }

        /// <summary>The report for a bin whose block or link failed its check while draining,
        /// naming the call the thread is in (out of line: the loop keeps no call number).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void DrainCorrupted(Block* b) => FreeLinks.Corrupted(FreeLinks.CurrentCall(), b);

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
            // First the cache a thread of this arena left at its exit (ThreadCache.Pool.cs): its
            // blocks back into the heap, those of other arenas onto their remote lists, the
            // cache to the pool.
            bool any = false;
            ThreadCache* parked = TakeParked(a);
            if (parked != null)
            {
                any = ReturnBinsLocked(a, parked, FreeLinks.CurrentCall(), sendOthersHome: true);
                ToPoolLater(parked);
            }
            ThreadCache* tc = Heap.PeekCache();
            if (tc == null || tc->Home != a || !s_enabled) return any;
            if (HeldBytes(tc) < ReturnMinBytes) return any;
            return ReturnBinsLocked(a, tc, tc->CurrentCall, sendOthersHome: false) | any;
        }

        /// <summary>With a's lock held: every block of arena a in cache tc's bins back into the
        /// heap; blocks of other arenas stay cached, or with <paramref name="sendOthersHome"/>
        /// (a parked cache, emptied whole) go onto their arenas' remote lists.</summary>
        private static bool ReturnBinsLocked(Arena* a, ThreadCache* tc, int call, bool sendOthersHome)
        {
            ulong* sorted = tc->Scratch;
            bool any = false;
            ulong returnedBytes = 0;
            long returned = 0;
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
                    if (Blocks.ArenaOf(b) != a->Index)
                    {
                        if (sendOthersHome)
                        {
                            Arenas.PushRemote(Heap.ArenaAt(Blocks.ArenaOf(b)), b);
                            continue;
                        }
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
            // The blocks held back above the bins' sizes are all of the cache's home arena.
            if (tc->Home == a) any |= ReleaseAllHeldLocked(tc, a);
            return any;
        }

        private static void ReleaseSortedLocked(Arena* a, ulong* blocks, int n)
        {
            SortAddresses(blocks, n);
            ulong* s = a->Stats;
            // Every block here is of arena a (Drain and ReturnCachedLocked see to it).
            ulong retiredSeed = Blocks.CheckSeed(0, a->Index);
            int joins = 0;
            int start = 0;
            while (start < n)
            {
                Block* run = (Block*)blocks[start];
                uint units = run->SizeUnits;
                int next = start + 1;
                // Join the blocks that follow run directly in memory: they become its
                // payload, so no header of theirs may survive (Retire), and each join is
                // a coalesce like any other.
                Block* end = (Block*)((byte*)run + ((nuint)units << Blocks.UnitShift));
                while (next < n && (Block*)blocks[next] == end)
                {
                    uint joinedUnits = end->SizeUnits;
                    units += joinedUnits;
                    Blocks.Retire(end, retiredSeed);
                    end = (Block*)((byte*)end + ((nuint)joinedUnits << Blocks.UnitShift));
                    next++;
                }
                joins += next - start - 1;
                if (units != run->SizeUnits)
                {
                    Blocks.Set(run, units, a->Index, Blocks.Used);
                    Blocks.MarkPrevUsed(Blocks.Next(run));
                }
                Blocks.SetState(run, Blocks.Used);
                Arenas.Release(a, run);
                start = next;
            }
            s[StatsLayout.Coalesces] += (ulong)joins;
        }

        /// <summary>Sorts n (at most ScratchBlocks) addresses, ascending. A bin often hands
        /// its blocks back in exactly ascending or descending address order (a size freed
        /// in the order it was carved, or the reverse): one pass finds out, and those take
        /// O(n). Anything else gets a Shell sort with Ciura's gaps (a plain insertion sort
        /// would take up to n²/2 moves).</summary>
        private static void SortAddresses(ulong* a, int n)
        {
            // Two passes that each stop at the first pair out of their order, rather than
            // one pass that keeps two flags to the end: the usual orders cost one compare
            // a block.
            int up = 1;
            while (up < n && a[up - 1] <= a[up]) up++;
            if (up >= n) return;
            int down = 1;
            while (down < n && a[down - 1] > a[down]) down++;
            if (down >= n)
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
