// Sampling allocations by bytes, always on (docs/profiling.md).
//
// Each thread counts down a random number of requested bytes (exponential, mean
// KONFISCATOR_SAMPLE_BYTES, 512 KiB by default, 0 = off). The allocation path
// pays one subtract and a branch (Charge); the allocation during which the
// countdown runs out takes the slow path (Take): its stack is unwound, recorded
// with its size and time in the sample tables, and its block is flagged in its
// header (Blocks.FlagSampled). A free of a flagged block (never on the fast path:
// the flag makes the fast path's state test fail) removes the sample.
//
// Guards:
//   - recursion: the unwinder may allocate; a thread inside the sampler has
//     InSampler set, and a countdown running out there is served, not sampled;
//   - signals: a handler that interrupts the sampler and allocates is served the
//     same way; one that frees a sampled block leaves its entry stale (counted;
//     replaced when the address is sampled again), since the lock may be held;
//   - fork: a fork waits for walks under way to finish and holds the table lock,
//     so the child inherits consistent tables and no half-held unwinder lock;
//   - no unwinder: sampling stays off with the reason in the tables' header.

using System.Runtime.CompilerServices;
using System.Threading;
using Konfiscator.Native.Heap;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class Sampler
    {
        public const ulong DefaultMean = 512 << 10;

        private static ulong s_mean;            // 0 = off
        private static int s_on;                 // the unwinder is warm and sampling runs
        private static int s_forking, s_unwinders;
        // Counted where the table lock cannot be taken; folded into the header later.
        private static long s_reentrant, s_stale, s_forkSkips;

        public static ulong Mean => s_mean;
        private const long Never = 0x7FFFFFFFFFFFFFFF;

        // Statics never move (there is no GC), but C# wants `fixed` to take their address.
        private static int OnNow { get { fixed (int* p = &s_on) return Atomics.Read(p); } }
        private static int ForkingNow { get { fixed (int* p = &s_forking) return Atomics.Read(p); } }
        private static int UnwindersNow { get { fixed (int* p = &s_unwinders) return Atomics.Read(p); } }

        /// <summary>Reads the settings and sets up the tables; at heap start-up, before any
        /// thread has a cache.</summary>
        public static void Configure()
        {
            s_mean = ReadMean();
            LeakReport.Configure();
            SampleTables.Initialize(s_mean, s_mean == 0 ? SampleLayout.StateOffBySetting : SampleLayout.StateNotStarted);
        }

        private static ulong ReadMean()
        {
            byte* text = Settings.Get("KONFISCATOR_SAMPLE_BYTES");
            if (text == null || *text == 0) return DefaultMean;
            ulong value = TextBuffer.ParseUnsigned(text, out int used);
            if (used == 0) return DefaultMean;
            byte unit = text[used];
            if (unit == (byte)'k' || unit == (byte)'K') value <<= 10;
            else if (unit == (byte)'m' || unit == (byte)'M') value <<= 20;
            return value;
        }

        /// <summary>The library's initializer: find and warm the unwinder, then start.</summary>
        public static void StartUnwinder()
        {
            if (s_mean == 0 || !SampleTables.Ready) return;
            if (Unwinder.Initialize())
            {
                SampleTables.SetState(SampleLayout.StateOn);
                fixed (int* on = &s_on) Atomics.Write(on, 1);
            }
            else
            {
                SampleTables.SetState(SampleLayout.StateNoUnwinder);
            }
        }

        /// <summary>A new thread's first countdown.</summary>
        public static void StartThread(ThreadCache* tc)
        {
            ulong seed = (ulong)tc ^ (ulong)Clock.RealtimeNanoseconds() ^ ((ulong)Libc.syscall(Libc.SYS_gettid, null, 0, 0, null, null, 0) << 32);
            tc->SampleRandom = seed | 1;
            tc->SampleCountdown = s_mean == 0 ? Never : SampleMath.Exponential(&tc->SampleRandom, s_mean);
        }

        /// <summary>The allocation hook: one subtract and a branch. Every allocation that
        /// returns a block with a thread cache at hand passes here, with the requested size.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static byte* Charge(ThreadCache* tc, Block* b, nuint size)
        {
            // Subtract in memory, then test what is there: two instructions and a branch
            // (the compiler keeps the address in a register for the other form).
            tc->SampleCountdown -= (long)size;
            if (tc->SampleCountdown < 0) return Take(tc, b, size);
            return Blocks.Payload(b);
        }

        /// <summary>Charge for a block of <paramref name="size"/> requested bytes of which only
        /// <paramref name="charged"/> are new (realloc): those are counted down, the sample
        /// records the whole size.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static byte* ChargeGrowth(ThreadCache* tc, Block* b, nuint charged, nuint size)
        {
            if ((tc->SampleCountdown -= (long)charged) < 0) return Take(tc, b, size);
            return Blocks.Payload(b);
        }

        /// <summary>A sampled block was resized by the heap (to <paramref name="b"/>, maybe at a new
        /// address): its sample follows with the new size; the block keeps its flag.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static byte* Moved(ThreadCache* tc, ulong oldPayload, Block* b, nuint size)
        {
            byte* payload = Blocks.Payload(b);
            bool followed = false;
            if (tc == null || tc->InSampler == 0)
            {
                if (tc != null) tc->InSampler = 1;
                followed = SampleTables.Move(oldPayload, (ulong)payload, size);
                if (tc != null) tc->InSampler = 0;
            }
            else
            {
                Interlocked.ExchangeAdd(ref s_stale, 1);
            }
            if (followed) b->Flags |= Blocks.FlagSampled;
            else b->Flags &= unchecked((byte)~Blocks.FlagSampled);
            b->Check = Blocks.ComputeCheck(b);
            return payload;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static byte* Take(ThreadCache* tc, Block* b, nuint size)
        {
            byte* payload = Blocks.Payload(b);
            if (OnNow == 0)
            {
                // Not warmed up yet (keep counting down), or off for good.
                tc->SampleCountdown = s_mean == 0 || SampleTables.State > SampleLayout.StateOn
                    ? Never : SampleMath.Exponential(&tc->SampleRandom, s_mean);
                return payload;
            }
            tc->SampleCountdown = SampleMath.Exponential(&tc->SampleRandom, s_mean);
            if (tc->InSampler != 0)
            {
                Interlocked.ExchangeAdd(ref s_reentrant, 1);
                return payload;
            }
            tc->InSampler = 1;
            int depth = 0;
            Interlocked.ExchangeAdd(ref s_unwinders, 1);
            if (ForkingNow == 0)
            {
                var trace = new Unwinder.Trace { Frames = tc->SampleFrames, Capacity = SampleLayout.MaxFrames };
                Unwinder.Walk(&trace);
                depth = trace.Depth;
                if (depth > 0) Modules.Refresh();
            }
            else
            {
                Interlocked.ExchangeAdd(ref s_forkSkips, 1);
                depth = -1;
            }
            Interlocked.ExchangeAdd(ref s_unwinders, -1);
            if (depth == 0)
            {
                SampleTables.Count(SampleLayout.CounterNoFrames);
            }
            else if (depth > 0)
            {
                uint tid = (uint)Libc.syscall(Libc.SYS_gettid, null, 0, 0, null, null, 0);
                if (SampleTables.Record((ulong)payload, size, tc->SampleFrames, depth, tid, s_reentrant, s_stale, s_forkSkips))
                {
                    b->Flags |= Blocks.FlagSampled;
                    b->Check = Blocks.ComputeCheck(b);
                }
            }
            tc->InSampler = 0;
            return payload;
        }

        /// <summary>True when b carries a sample (checked only off the fast path).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsSampled(Block* b) => (b->Flags & Blocks.FlagSampled) != 0;

        /// <summary>Sampled block b is being freed (or moved by realloc): its sample goes.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Forget(ThreadCache* tc, Block* b)
        {
            b->Flags &= unchecked((byte)~Blocks.FlagSampled);
            b->Check = Blocks.ComputeCheck(b);
            if (tc != null && tc->InSampler != 0)
            {
                // A signal handler freeing inside the sampler: the lock may be ours already.
                Interlocked.ExchangeAdd(ref s_stale, 1);
                return;
            }
            if (tc != null) tc->InSampler = 1;
            SampleTables.Remove((ulong)Blocks.Payload(b));
            if (tc != null) tc->InSampler = 0;
        }

        // ---- fork ----

        /// <summary>Before fork, before any arena lock: let walks under way finish (the
        /// unwinder's own locks must not be inherited held), then hold the tables.</summary>
        public static void BeforeFork()
        {
            Interlocked.ExchangeAdd(ref s_forking, 1);
            while (UnwindersNow != 0) Libc.sched_yield();
            if (SampleTables.Ready) SampleTables.Lock();
        }

        public static void AfterForkInParent()
        {
            if (SampleTables.Ready) SampleTables.Unlock();
            Interlocked.ExchangeAdd(ref s_forking, -1);
        }

        /// <summary>In the child, before the stats writer publishes its new segment.</summary>
        public static void AfterForkInChild()
        {
            SampleTables.ResetLockAfterFork();
            s_unwinders = 0;
            s_forking = 0;
        }

        /// <summary>The library's finalizer (at exit).</summary>
        public static void AtExit() => LeakReport.WriteIfAsked(s_mean);
    }
}
