// Threads that are past their thread-key destructors: they must not get a new
// cache (docs/heap.md, "Thread exit").
//
// glibc ends a thread in this order: thread_local destructors, then the
// pthread-key destructors (up to four rounds; ours gives the cache back and sets
// the key to ThreadCaches.Exited, so later rounds' calls run without a cache),
// then it clears every key to NULL, then __libc_thread_freeres, which calls
// free(NULL) and frees libc's per-thread buffers. A NULL key there looks exactly
// like a thread's first call, and a cache made then would be stored in the key of
// a thread that never runs its destructors again: lost with its stats slot, and
// handed to the next thread glibc starts on the same descriptor (its stack cache),
// in a fork child with counters pointing into the parent's stats mapping, which
// the child no longer has. (Issue 8: every fork child crashed that way.)
//
// So the destructor records the dying thread here (its descriptor address and
// kernel thread id), and a thread whose key is NULL gets a cache only if it is
// not in this table. A new thread on a reused descriptor has another thread id:
// it takes the entry out and gets its cache. The table is small and only looked
// at on a thread's first call (one gettid there); if more threads are between
// their destructors and their end at once than it holds, the oldest entry is
// overwritten, and such a thread's late calls make a cache again (a leak, not a
// crash: the fork child's reset below still applies).

using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class ExitedThreads
    {
        private const int Capacity = 256;

        private struct Table
        {
            public fixed ulong Self[Capacity];   // pthread_self() of a thread past its destructors, 0 = empty
            public fixed int Tid[Capacity];      // its kernel thread id
        }

#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static Table s_table;
#pragma warning restore CS0169, CS0649
        private static int s_cursor;

        /// <summary>The calling thread ran its cache's destructor: from now on it must not get a new one.</summary>
        public static void Record()
        {
            ulong self = (ulong)Libc.pthread_self();
            int tid = Libc.gettid();
            Lock();
            fixed (Table* t = &s_table)
            {
                int slot = -1;
                for (int i = 0; i < Capacity; i++)
                {
                    if (t->Self[i] == self) { slot = i; break; }
                    if (slot < 0 && t->Self[i] == 0) slot = i;
                }
                if (slot < 0)
                {
                    slot = s_cursor;
                    s_cursor = (s_cursor + 1) % Capacity;
                }
                t->Self[slot] = self;
                t->Tid[slot] = tid;
            }
            Unlock();
        }

        /// <summary>True if the calling thread (whose key is NULL) is one that already
        /// ran its destructors; false for a new thread, which also clears the entry a
        /// dead thread left for the descriptor it now uses.</summary>
        public static bool IsCallerTornDown()
        {
            ulong self = (ulong)Libc.pthread_self();
            bool tornDown = false;
            Lock();
            fixed (Table* t = &s_table)
            {
                for (int i = 0; i < Capacity; i++)
                {
                    if (t->Self[i] != self) continue;
                    if (t->Tid[i] == Libc.gettid()) tornDown = true;
                    else t->Self[i] = 0;
                    break;
                }
            }
            Unlock();
            return tornDown;
        }

        public static void Lock() { fixed (int* w = &ForkLocks.ExitedThreads) FutexLock.Acquire(w); }
        public static void Unlock() { fixed (int* w = &ForkLocks.ExitedThreads) FutexLock.Release(w); }
        public static void ResetAfterForkInChild() { fixed (int* w = &ForkLocks.ExitedThreads) FutexLock.ResetAfterFork(w); }
    }
}
