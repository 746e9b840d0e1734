// Arenas, realloc in place: shrinking a used block (its tail is freed) and growing
// it into its free upper neighbour. Apart from placement and free because both
// change a block that stays where it is.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class Arenas
    {
        /// <summary>Shrinks used block b to <paramref name="units"/>, freeing a tail of at least a minimum block.</summary>
        public static void Shrink(Arena* a, Block* b, uint units)
        {
            uint tail = b->SizeUnits - units;
            if (tail < Blocks.MinUnits) return;
            Block* t = (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift));
            Blocks.MarkPrevUsed(t);
            Blocks.Set(t, tail, a->Index, Blocks.Used);
            Blocks.MarkPrevUsed(Blocks.Next(t));
            Blocks.Set(b, units, a->Index, Blocks.Used);
            Release(a, t);
        }

        /// <summary>Grows used block b to <paramref name="units"/> into a free upper neighbour, if it is big enough.</summary>
        public static bool TryGrow(Arena* a, Block* b, uint units)
        {
            Block* next = Blocks.Next(b);
            if (next->State != Blocks.Free) return false;
            uint total = b->SizeUnits + next->SizeUnits;
            if (total < units) return false;

            ulong* s = a->Stats;
            uint nextUnits = next->SizeUnits;
            uint rest = total - units;
            s[StatsLayout.FreeBytes] -= (nuint)(nextUnits - (rest >= Blocks.MinUnits ? rest : 0)) << Blocks.UnitShift;
            if (rest >= Blocks.MinUnits)
            {
                // The rest of the neighbour stays free just above the grown block: it
                // takes the neighbour's place in the index (nothing lies between them).
                // r may lie only 16 bytes above next, its header over next's node
                // pointer: read it first. next's header is left as it is (it is inside the
                // grown block now, where the program's bytes will overwrite it).
                Node* nextNode = FreeIndex.NodeOf(next);
                FreeRestAbove(a, (Block*)((byte*)b + ((nuint)units << Blocks.UnitShift)), units, rest, nextNode);
                Blocks.Set(b, units, a->Index, Blocks.Used);
            }
            else
            {
                FreeIndex.Remove(a, next);
                s[StatsLayout.FreeBlocks]--;
                Blocks.Retire(next);
                Blocks.Set(b, total, a->Index, Blocks.Used);
                Blocks.MarkPrevUsed(Blocks.Next(b));
            }
            return true;
        }
    }
}
