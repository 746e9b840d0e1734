// The sampler's side in the heap (docs/profiling.md): each thread's countdown of
// requested bytes, and the flag in a sampled block's header (its check, the plain
// one with fixed bits flipped: Blocks.ComputeSampledCheck). The sampling itself
// (when to sample, the stack walk, the tables) is Sampling/Sampler.cs, one layer
// down, which knows nothing of blocks or caches; here the heap keeps its own
// objects: it asks that layer for countdowns and for a sample to be recorded, and
// marks the block when one was. The guards (recursion, signals) are described in
// Sampling/Sampler.cs; they work through ThreadCache.InSampler, set here.

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Sampling;
using Konfiscator.Native.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class SampledBlocks
    {
        /// <summary>A new thread's first countdown.</summary>
        public static void StartThread(ThreadCache* tc) =>
            tc->SampleCountdown = Sampler.FirstCountdown(&tc->SampleRandom, (ulong)tc);

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
                Sampler.CountStale();
            }
            b->Check = followed ? Blocks.ComputeSampledCheck(b) : Blocks.ComputeCheck(b);
            return payload;
        }

        /// <summary>The countdown ran out during this allocation: a new countdown, and a
        /// sample of the block unless the thread is inside the sampler already.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static byte* Take(ThreadCache* tc, Block* b, nuint size)
        {
            byte* payload = Blocks.Payload(b);
            tc->SampleCountdown = Sampler.NextCountdown(&tc->SampleRandom, out bool sample);
            if (!sample) return payload;
            if (tc->InSampler != 0)
            {
                Sampler.CountReentrant();
                return payload;
            }
            tc->InSampler = 1;
            if (tc->SampleTid == 0) tc->SampleTid = Libc.gettid();
            if (Sampler.Record((ulong)payload, size, tc->SampleFrames, (uint)tc->SampleTid))
            {
                b->Check = Blocks.ComputeSampledCheck(b);
            }
            tc->InSampler = 0;
            return payload;
        }


        /// <summary>Sampled block b is being freed (or moved by realloc): its sample goes.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Forget(ThreadCache* tc, Block* b)
        {
            b->Check = Blocks.ComputeCheck(b);
            if (tc != null && tc->InSampler != 0)
            {
                // A signal handler freeing inside the sampler: the lock may be ours already.
                Sampler.CountStale();
                return;
            }
            if (tc != null) tc->InSampler = 1;
            SampleTables.Remove((ulong)Blocks.Payload(b));
            if (tc != null) tc->InSampler = 0;
        }
    }
}
