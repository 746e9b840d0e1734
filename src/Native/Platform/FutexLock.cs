// A lock word that sleeps in the kernel instead of spinning forever.
//
//   0 = unlocked, 1 = locked, 2 = locked and somebody may be sleeping on it.
//
// The uncontended path is one `lock cmpxchg` to take and one `xchg` to release.
// Contended threads spin briefly (critical sections are short), then mark the
// word 2 and sleep with FUTEX_WAIT; the releaser wakes one sleeper only when it
// sees 2. This is the classic three-state futex mutex.
//
// While the process has a single thread, the word is set and cleared with plain
// stores instead. A locked instruction is not only ~20 cycles: it waits for every
// store before it to reach the cache, so after a program has written a block it
// just got (memset of a few KiB that miss), the next malloc or free stalls until
// they land; and no load after it may start early. On the fragmentation mix the
// two atomics a heap call were a tenth of the run. glibc's own malloc skips its
// locks the same way (SINGLE_THREAD_P).
//
// "Single" is glibc's __libc_single_threaded (public since glibc 2.32,
// <sys/single_threaded.h>, made for exactly this): pthread_create clears it in
// the creating thread before the new thread exists, and nothing sets it again. So
// a thread that reads it set is the only thread of the process, and stays the only
// one until it creates another itself, which it does not do while it holds one of
// our locks. A lock taken with a plain store is therefore never contended, and a
// release with a plain store never has a sleeper to wake. Until the initializer
// has found the flag (or where libc has none), every lock uses the atomics.

using System.Runtime.CompilerServices;
using System.Threading;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class FutexLock
    {
        private const int SpinsBeforeSleeping = 100;

        // glibc's __libc_single_threaded, or null: see the top of the file.
        private static byte* s_singleThreaded;

        /// <summary>The library's initializer: find glibc's single-thread flag.</summary>
        public static void FindSingleThreadFlag() =>
            s_singleThreaded = (byte*)DynamicLinker.Symbol(DynamicLinker.RTLD_DEFAULT, "__libc_single_threaded");

        /// <summary>Alone() where the caller knows the flag was found (Heap.SoleThreadCache: its
        /// cache is kept only while Alone()), without testing for it on a fast path.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool AloneFlagKnown() => *s_singleThreaded != 0;

        /// <summary>True only when this is the process's one thread (see the top of the file):
        /// the locks are plain stores right now.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Alone()
        {
            byte* flag = s_singleThreaded;
            return flag != null && *flag != 0;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Acquire(int* word)
        {
            if (Alone()) { *word = 1; return; }
            if (Interlocked.CompareExchange(ref *word, 1, 0) != 0)
                AcquireContended(word);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool TryAcquire(int* word)
        {
            if (!Alone()) return Interlocked.CompareExchange(ref *word, 1, 0) == 0;
            // Alone, a held lock is one this thread holds (e.g. a try from inside a
            // walk that already has it): report it taken, as the atomic would.
            if (*word != 0) return false;
            *word = 1;
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Release(int* word)
        {
            if (Alone()) { *word = 0; return; }
            if (Interlocked.Exchange(ref *word, 0) == 2) WakeOne(word);
        }

        /// <summary>The wake of a contended release, out of line: the system call's transition
        /// frame, inlined, made every caller of Release save six registers and set up a frame
        /// (an arena unlock cost 28 instructions instead of 10: callgrind,
        /// docs/performance/fragmentation.md).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void WakeOne(int* word) =>
            Libc.syscall(Libc.SYS_futex, word, Libc.FUTEX_WAKE_PRIVATE, 1, null, null, 0);

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void AcquireContended(int* word)
        {
            for (int i = 0; i < SpinsBeforeSleeping; i++)
            {
                if (Atomics.Read(word) == 0 && Interlocked.CompareExchange(ref *word, 1, 0) == 0)
                    return;
            }
            // From here on we may sleep, so announce it with 2 before each wait.
            // futex may set errno (EAGAIN, EINTR); the caller's errno must survive.
            int saved = *Libc.__errno_location();
            while (Interlocked.Exchange(ref *word, 2) != 0)
                Libc.syscall(Libc.SYS_futex, word, Libc.FUTEX_WAIT_PRIVATE, 2, null, null, 0);
            *Libc.__errno_location() = saved;
        }

        /// <summary>In a child after fork only one thread exists: whoever held the
        /// lock in the parent is gone, so the word is simply reset.</summary>
        public static void ResetAfterFork(int* word) => *word = 0;
    }
}
