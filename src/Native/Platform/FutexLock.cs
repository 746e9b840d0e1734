// A lock word that sleeps in the kernel instead of spinning forever.
//
//   0 = unlocked, 1 = locked, 2 = locked and somebody may be sleeping on it.
//
// The uncontended path is one `lock cmpxchg` to take and one `xchg` to release.
// Contended threads spin briefly (critical sections are short), then mark the
// word 2 and sleep with FUTEX_WAIT; the releaser wakes one sleeper only when it
// sees 2. This is the classic three-state futex mutex.

using System.Runtime.CompilerServices;
using System.Threading;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class FutexLock
    {
        private const int SpinsBeforeSleeping = 100;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Acquire(int* word)
        {
            if (Interlocked.CompareExchange(ref *word, 1, 0) != 0)
                AcquireContended(word);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool TryAcquire(int* word) => Interlocked.CompareExchange(ref *word, 1, 0) == 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Release(int* word)
        {
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
