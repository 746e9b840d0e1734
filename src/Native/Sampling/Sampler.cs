// Sampling allocations by bytes, always on (docs/profiling.md).
//
// Each thread counts down a random number of requested bytes (exponential, mean
// KONFISCATOR_SAMPLE_BYTES, 512 KiB by default, 0 = off). The allocation path
// pays one subtract and a branch (Heap/SampledBlocks.cs, Charge); the allocation
// during which the countdown runs out takes the slow path: its stack is unwound
// and recorded with its size and time in the sample tables (Record, here), and
// its block is flagged in its header (its check with fixed bits flipped,
// Blocks.ComputeSampledCheck, by the heap). A free of a flagged block (never on the
// fast path: the flag makes the fast path's check fail) removes the sample.
//
// This file is the Sampling layer, below the heap: it knows nothing of blocks or
// thread caches; the heap keeps each thread's countdown and the block flags and
// calls in here (src/Native/README.md, "Layers").
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
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class Sampler
    {
        public const ulong DefaultMean = 512 << 10;

        private static ulong s_mean;            // 0 = off
        private static int s_on;                 // the unwinder is warm and sampling runs
        // Counted where the table lock cannot be taken; folded into the header later.
        private static long s_reentrant, s_stale, s_forkSkips;

        private const long Never = 0x7FFFFFFFFFFFFFFF;

        // Statics never move (there is no GC), but C# wants `fixed` to take their address.
        private static int OnNow { get { fixed (int* p = &s_on) return Atomics.Read(p); } }
        private static int ForkingNow { get { fixed (int* p = &ForkLocks.SamplerForking) return Atomics.Read(p); } }
        private static int UnwindersNow { get { fixed (int* p = &ForkLocks.SamplerUnwinders) return Atomics.Read(p); } }

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
            byte* text = Settings.Get(StatsSchema.SampleBytesVariable);
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

        /// <summary>A new thread's first countdown; seeds its random state at
        /// <paramref name="random"/> (<paramref name="salt"/>: something of the thread's own).</summary>
        public static long FirstCountdown(ulong* random, ulong salt)
        {
            ulong seed = salt ^ (ulong)Clock.RealtimeNanoseconds() ^ ((ulong)(uint)Libc.gettid() << 32);
            *random = seed | 1;
            return s_mean == 0 ? Never : SampleMath.Exponential(random, s_mean);
        }

        /// <summary>A countdown ran out: the next one. <paramref name="sample"/> says whether
        /// the allocation at hand is to be sampled (not while the unwinder is not warmed up
        /// yet, when the countdown goes on, nor once sampling is off for good).</summary>
        public static long NextCountdown(ulong* random, out bool sample)
        {
            sample = OnNow != 0;
            if (!sample)
                return s_mean == 0 || SampleTables.State > SampleLayout.StateOn
                    ? Never : SampleMath.Exponential(random, s_mean);
            return SampleMath.Exponential(random, s_mean);
        }

        /// <summary>A countdown ran out while the thread was inside the sampler: served, not sampled.</summary>
        public static void CountReentrant() => Interlocked.ExchangeAdd(ref s_reentrant, 1);

        /// <summary>A sample that could not be updated (the thread is inside the sampler): left stale.</summary>
        public static void CountStale() => Interlocked.ExchangeAdd(ref s_stale, 1);

        /// <summary>Walks the calling thread's stack into <paramref name="frames"/> (MaxFrames
        /// of the thread's own) and records a sample of <paramref name="size"/> bytes at
        /// <paramref name="payload"/> by thread <paramref name="tid"/>; true when it is recorded
        /// (the caller flags the block). The caller has marked the thread as inside the sampler.</summary>
        public static bool Record(ulong payload, nuint size, ulong* frames, uint tid)
        {
            int depth = 0;
            Interlocked.ExchangeAdd(ref ForkLocks.SamplerUnwinders, 1);
            if (ForkingNow == 0)
            {
                var trace = new Unwinder.Trace { Frames = frames, Capacity = SampleLayout.MaxFrames };
                Unwinder.Walk(&trace);
                depth = trace.Depth;
                if (depth > 0) Modules.Refresh();
            }
            else
            {
                Interlocked.ExchangeAdd(ref s_forkSkips, 1);
                depth = -1;
            }
            Interlocked.ExchangeAdd(ref ForkLocks.SamplerUnwinders, -1);
            if (depth == 0)
            {
                SampleTables.Count(SampleLayout.CounterNoFrames);
                return false;
            }
            if (depth < 0) return false;
            return SampleTables.Record(payload, size, SampleMath.WeightBytes(size, s_mean), frames, depth, tid, s_reentrant, s_stale, s_forkSkips);
        }

        // ---- fork ----

        /// <summary>Before fork, before any arena lock: let walks under way finish (the
        /// unwinder's own locks must not be inherited held), then hold the tables.</summary>
        public static void BeforeFork()
        {
            Interlocked.ExchangeAdd(ref ForkLocks.SamplerForking, 1);
            while (UnwindersNow != 0) Libc.sched_yield();
            if (SampleTables.Ready) SampleTables.Lock();
        }

        public static void AfterForkInParent()
        {
            if (SampleTables.Ready) SampleTables.Unlock();
            Interlocked.ExchangeAdd(ref ForkLocks.SamplerForking, -1);
        }

        /// <summary>In the child, before the stats writer publishes its new segment.</summary>
        public static void AfterForkInChild()
        {
            SampleTables.ResetLockAfterFork();
            ForkLocks.SamplerUnwinders = 0;
            ForkLocks.SamplerForking = 0;
        }

        /// <summary>The library's finalizer (at exit).</summary>
        public static void AtExit() => LeakReport.WriteIfAsked(s_mean);
    }
}
