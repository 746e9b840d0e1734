// Arenas, frees from other threads: a thread that must give a block back to an
// arena whose lock is taken pushes it onto the arena's lock-free remote list; the
// next holder of the lock frees the list. The only part of Arenas that runs
// without the lock.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>A thread that must give block b back to arena a while a's lock is
        /// taken (by the owner, typically) does not wait: it pushes b onto the arena's
        /// remote list with one compare-and-swap, and whoever takes the lock next puts
        /// the list's blocks back into the heap. The block stays Cached meanwhile, so a
        /// double free of it is still caught.</summary>
        public static void PushRemote(Arena* a, Block* b)
        {
            Blocks.SetState(b, Blocks.Cached);
            long head;
            do
            {
                head = (long)Atomics.Read((ulong*)&a->Remote);
                FreeLinks.SetNext(b, (Block*)head);
            }
            while (Interlocked.CompareExchange(ref *(long*)&a->Remote, (long)b, head) != head);
        }

        /// <summary>PushRemote for a chain of blocks (head..tail, linked through their
        /// first word, already Cached), with one compare-and-swap.</summary>
        public static void PushRemoteChain(Arena* a, Block* head, Block* tail)
        {
            long old;
            do
            {
                old = (long)Atomics.Read((ulong*)&a->Remote);
                FreeLinks.SetNext(tail, (Block*)old);
            }
            while (Interlocked.CompareExchange(ref *(long*)&a->Remote, (long)head, old) != old);
        }

        /// <summary>With a's lock held: frees every block on its remote list.</summary>
        public static void ReleaseRemote(Arena* a) =>
            ReleaseChain(a, (Block*)Interlocked.Exchange(ref *(long*)&a->Remote, 0));

        /// <summary>With a's lock held: frees a chain of Cached blocks linked through their first word.</summary>
        public static void ReleaseChain(Arena* a, Block* b)
        {
            ulong* s = a->Stats;
            int call = FreeLinks.CurrentCall();
            while (b != null)
            {
                FreeLinks.CheckCached(b, call);
                Block* next = FreeLinks.Next(b, call);
                s[StatsLayout.CachedBytes] -= Blocks.Bytes(b);
                s[StatsLayout.CacheReturnBlocks]++;
                Blocks.SetState(b, Blocks.Used);
                Release(a, b);
                b = next;
            }
        }
    }
}
