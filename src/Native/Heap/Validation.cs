// Every check of the heap's soundness, in one place: telling a pointer we handed
// out from anything else (Validate, on every free and realloc, with a clear message
// when it is not one), and the invariants of docs/heap.md walked over every arena
// (CheckAll, for tests and the konfiscator_heap_check export, which only calls it).

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Heap
    {
        // ---- is this one of ours? ----

        /// <summary>The header of live block p, or a stop with a clear message naming
        /// <paramref name="call"/> when p is not one (double free, foreign, corrupted).</summary>
        public static Block* Validate(string call, void* p) => Validate(call, p, out _);

        /// <summary>Validate, saying also whether the block's allocation was sampled (which check
        /// its header passed: the free and realloc paths would otherwise hash it again).</summary>
        public static Block* Validate(string call, void* p, out bool sampled)
        {
            Block* b = Blocks.FromPayload(p);
            if (((nuint)p & 15) != 0 || !PageMap.Contains(b))
                Fatal.Misuse(call, "invalid pointer", p);
            sampled = !Blocks.CheckOkUnsampled(b);
            if ((sampled && b->Check != Blocks.ComputeSampledCheck(b)) || Blocks.ArenaOf(b) >= s_arenaCount)
                Diagnose(call, p);
            if (b->State == Blocks.Used || b->State == Blocks.Large) return b;
            if (b->State == Blocks.Free || b->State == Blocks.Cached)
                Fatal.Misuse(call, IsFreeCall(call) ? "double free" : "pointer already freed", p);
            Fatal.Misuse(call, "invalid pointer", p);
            return null;
        }

        private static bool IsFreeCall(string call)
        {
            fixed (char* c = call) return c[0] == 'f' || c[0] == 'c'; // "free", "cfree"
        }

        /// <summary>p's header fails its check. Walk the region that holds p to tell an
        /// overwritten header (p is where a block starts) from a pointer into the middle
        /// of a block. Only ever on the way to abort().</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void Diagnose(string call, void* p)
        {
            Block* target = Blocks.FromPayload(p);
            for (int i = 0; i < s_arenaCount; i++)
            {
                for (Region* r = ArenaAt(i)->Regions; r != null; r = r->Next)
                {
                    if ((byte*)target < (byte*)r || (byte*)target >= (byte*)r + r->Bytes) continue;
                    Block* end = Regions.Sentinel(r);
                    for (Block* b = Regions.FirstBlock(r); b < end; b = Blocks.Next(b))
                    {
                        if (b == target) Fatal.Misuse(call, "corrupted block header", p);
                        if (!Blocks.CheckOk(b) || b->SizeUnits == 0)
                            Fatal.Misuse(call, "corrupted block header", p); // the walk cannot go on
                        if (b > target) break;
                        if (Blocks.Next(b) > target) Fatal.Misuse(call, "invalid pointer", p);
                    }
                    Fatal.Misuse(call, "invalid pointer", p);
                }
            }
            // In a large mapping. Large payloads sit 16 bytes into a page, or at an
            // offset that is their (power of two) alignment: anywhere else p points
            // into the middle of a block; there, the header was overwritten.
            nuint offset = (nuint)p & (OsMemory.PageSize - 1);
            bool couldStartLarge = offset == Blocks.HeaderBytes || (offset & (offset - 1)) == 0;
            Fatal.Misuse(call, couldStartLarge ? "corrupted block header" : "invalid pointer", p);
        }

        // ---- the heap's invariants ----

        /// <summary>Walks every arena (each under its lock) and returns how many invariants
        /// are broken (0 = sound).</summary>
        public static int CheckAll()
        {
            int problems = 0;
            for (int i = 0; i < s_arenaCount; i++)
            {
                Arena* a = ArenaAt(i);
                LockArena(a);
                problems += CheckArena(a);
                UnlockArena(a);
            }
            return problems;
        }

        /// <summary>The invariants of one arena (docs/heap.md), checked with its lock held:
        /// how many are broken.</summary>
        private static int CheckArena(Arena* a)
        {
            int problems = 0;
            ulong freeBytes = 0, freeBlocks = 0;
            int emptyRegions = 0;
            for (Region* r = a->Regions; r != null; r = r->Next)
            {
                if (r->Next != null && r->Next <= r) problems++;           // address order
                Block* end = Regions.Sentinel(r);
                Block* b = Regions.FirstBlock(r);
                if (!Blocks.IsFirst(b) || b->PrevTag != 0) problems++;     // the first block is marked so
                uint prevUnits = 0;
                bool prevFree = false;
                while (b < end)
                {
                    if (!Blocks.CheckOk(b) || Blocks.ArenaOf(b) != a->Index || b->SizeUnits < Blocks.MinUnits)
                    {
                        problems++;
                        break;                                                // cannot walk on
                    }
                    if (Blocks.PrevIsFree(b) != prevFree || (prevFree && Blocks.PrevSize(b) != prevUnits)
                        || (prevUnits != 0 && Blocks.IsFirst(b)))
                        problems++;                                           // free bits and boundary tags agree
                    bool free = b->State == Blocks.Free;
                    if (!free && b->State != Blocks.Used && b->State != Blocks.Cached) problems++;
                    if (free && prevFree) problems++;                         // no two free neighbours
                    if (free)
                    {
                        freeBytes += Blocks.Bytes(b);
                        freeBlocks++;
                        if (!FreeIndex.Contains(a, b)) problems++;            // the index knows it
                        if (Regions.IsWholeRegion(b)) emptyRegions++;
                    }
                    prevUnits = b->SizeUnits;
                    prevFree = free;
                    b = Blocks.Next(b);
                }
                if (b != end || end->State != Blocks.Sentinel || !Blocks.CheckOk(end) || Blocks.PrevIsFree(end) != prevFree
                    || (prevFree && Blocks.PrevSize(end) != prevUnits) || Blocks.IsFirst(end))
                    problems++;                                               // ends exactly at the sentinel
            }

            ulong nodes = 0;
            Block* last = null;
            problems += FreeIndex.Check(a->NodeRoot, null, ref nodes, ref last, out _);
            if (nodes != freeBlocks) problems++;                              // index == walk

            ulong* s = a->Stats;
            if (s[StatsLayout.FreeBytes] != freeBytes) problems++;            // counts add up
            if (s[StatsLayout.FreeBlocks] != freeBlocks) problems++;
            if (a->EmptyRegions != emptyRegions) problems++;
            return problems;
        }
    }
}
