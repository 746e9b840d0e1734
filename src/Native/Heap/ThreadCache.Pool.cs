// ThreadCaches, the caches themselves: making one for a new thread (from a pool
// of released ones, or carved from a mapping), retiring it at thread exit, and
// the pool's lock across fork. Apart from the bins because it is about the cache
// structures' lives, not the blocks in them.

using System.Runtime.CompilerServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class ThreadCaches
    {
        /// <summary>A cache's bytes with its bins, in whole cache lines: caches are carved
        /// one after another from page-aligned chunks, so each starts on a line.</summary>
        private static int StructBytes => ((sizeof(ThreadCache) - sizeof(Bin) + BinCount * sizeof(Bin) + 63) / 64) * 64;

        private static int s_poolLock;
        private static ThreadCache* s_pool;      // released caches, for new threads
        private static ThreadCache* s_made;      // every cache ever made (NextMade)
        private static byte* s_chunk;            // where new caches are carved from
        private static nuint s_chunkLeft;

        /// <summary>A new cache for the calling thread (the caller stores it in the thread key).</summary>
        public static ThreadCache* Create(Arena* home)
        {
            ThreadCache* tc = TakeFromPool();
            if (tc == null) return null;
            tc->Home = home;
            Interlocked.ExchangeAdd(ref home->HomeThreads, 1);
            tc->HomeUsedTag = Blocks.PlainUsedTag(home->Index);
            tc->ForeignHead = tc->ForeignTail = null;
            tc->ForeignCount = 0;
            tc->InUseDelta = 0;
            tc->GrowthLimit = StatsWriter.PeakQuantumFloor;
            tc->NextFree = null;
            tc->InSampler = 0;
            SampledBlocks.StartThread(tc);
            tc->StatsSlot = StatsWriter.ClaimThreadSlot();
            tc->Stats = tc->StatsSlot >= 0 ? StatsWriter.ThreadSlot(tc->StatsSlot) : StatsWriter.SharedSlot;
            for (uint units = MinUnits; units <= MaxUnits; units++)
            {
                Bin* bin = BinFor(tc, units);
                bin->Head = null;
                bin->Count = 0;
                bin->Refills = 0;
                uint capacity = StartBytes / (units << Blocks.UnitShift);
                capacity = capacity < MinCapacity ? MinCapacity : capacity > StartMaxBlocks ? StartMaxBlocks : capacity;
                bin->Capacity = (ushort)(!s_enabled ? 0 : capacity);
                bin->RefillMax = (ushort)capacity;
                bin->Overflowed = 0;
            }
            return tc;
        }

        /// <summary>At thread exit: every cached block back to the heap, the slot and the cache to their pools.</summary>
        public static void Destroy(ThreadCache* tc)
        {
            DrainAll(tc);
            Interlocked.ExchangeAdd(ref tc->Home->HomeThreads, -1);
            ThreadCaches.FlushInUse(tc);
            if (tc->StatsSlot >= 0) StatsWriter.ReleaseThreadSlot(tc->StatsSlot);
            LockPool();
            tc->NextFree = s_pool;
            tc->Pooled = 1;
            s_pool = tc;
            UnlockPool();
        }

        /// <summary>Adds the thread's not yet reported change of bytes in use to the
        /// process-wide figure (and so to the peak).</summary>
        public static void FlushInUse(ThreadCache* tc)
        {
            if (tc->InUseDelta != 0)
            {
                StatsWriter.AddInUse(tc->InUseDelta);
                tc->InUseDelta = 0;
            }
            tc->GrowthLimit = StatsWriter.GrowthToLookAt();
        }

        private static void LockPool() { fixed (int* w = &s_poolLock) FutexLock.Acquire(w); }
        private static void UnlockPool() { fixed (int* w = &s_poolLock) FutexLock.Release(w); }
        public static void LockForFork() => LockPool();
        public static void UnlockAfterFork() => UnlockPool();
        /// <summary>In a fork child, where only the forking thread (cache
        /// <paramref name="survivor"/>, or none) exists: every other cache in use belonged
        /// to a thread of the parent. glibc clears those threads' keys in the child, so
        /// none should be reached again; should one be (a descriptor reused with its key
        /// intact), it must not count into the parent's stats mapping, which the child no
        /// longer has: it counts in the child's shared slot from now on.</summary>
        public static void ResetAfterForkInChild(ThreadCache* survivor)
        {
            fixed (int* w = &s_poolLock) FutexLock.ResetAfterFork(w);
            // The child's one thread is the only one left at home anywhere.
            for (int i = 0; i < Heap.ArenaCount; i++) Heap.ArenaAt(i)->HomeThreads = 0;
            if (survivor != null) survivor->Home->HomeThreads = 1;
            for (ThreadCache* tc = s_made; tc != null; tc = tc->NextMade)
            {
                if (tc == survivor || tc->Pooled != 0) continue;
                tc->StatsSlot = -1;
                tc->Stats = StatsWriter.SharedSlot;
                tc->InUseDelta = 0;
                tc->GrowthLimit = StatsWriter.PeakQuantumFloor;
            }
        }

        private static ThreadCache* TakeFromPool()
        {
            LockPool();
            ThreadCache* tc = s_pool;
            if (tc != null)
            {
                s_pool = tc->NextFree;
                tc->Pooled = 0;
            }
            else
            {
                if (s_chunkLeft < (nuint)StructBytes)
                {
                    const nuint chunkBytes = 64 << 10;
                    s_chunk = Mappings.Map(chunkBytes);
                    s_chunkLeft = s_chunk == null ? 0 : chunkBytes;
                }
                if (s_chunkLeft >= (nuint)StructBytes)
                {
                    tc = (ThreadCache*)s_chunk;
                    s_chunk += StructBytes;
                    s_chunkLeft -= (nuint)StructBytes;
                    tc->NextMade = s_made;
                    s_made = tc;
                }
            }
            UnlockPool();
            return tc;
        }
    }
}
