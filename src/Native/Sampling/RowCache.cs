// The rows the unwinder found lately, by code address. A sampled stack mostly
// repeats the frames of the samples before it; a row found once is taken from here
// afterwards, without reading the object's tables (from its file: several system
// calls, ObjectFiles.cs) or running its instructions again.
//
// An entry also names the object's .eh_frame_hdr, which _dl_find_object reports for
// the address on every lookup anyway: if the object was unloaded and another loaded
// at the same address, the names differ and the entry is not used. Entries of 64
// bytes are written one after the other into the library's zero-filled data, so a
// program with a few allocation sites touches one page of it (a hashed table spread
// them over every page); a direct-mapped index of 512 two-byte slots finds them (a
// newer row takes an older one's slot). When all 256 are used, the cache starts
// again empty. A row is kept compact: the rules of the 17 registers a walk follows,
// and offsets that are multiples of 8 within +-1 KiB (what compilers emit for
// x86-64); any other row is simply not kept. Under the unwinder's lock.

using System.Runtime.InteropServices;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class RowCache
    {
        private const int Entries = 1024, SlotShift = 11, Slots = 1 << SlotShift;

        [StructLayout(LayoutKind.Sequential, Size = 64)]
        private struct Entry
        {
            public ulong Pc;                     // 0: empty
            public ulong Header;
            public int CfaOffset;
            public sbyte CfaRegister;
            public fixed byte Rule[CallFrames.RegisterCount];
            public fixed sbyte Slot[CallFrames.RegisterCount];   // offset / 8, or the register for InRegister
        }
        private struct Table { public fixed byte Bytes[Entries * 64]; }
        private struct Index { public fixed ushort Slot[Slots]; }   // entry number + 1; 0: none
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static Table s_table;
        private static Index s_index;
#pragma warning restore CS0169, CS0649
        private static int s_used;

        public static ulong Hits;

        private static ushort* SlotOf(ulong pc)
        {
            // Fibonacci hashing: the top bits of the product spread nearby addresses apart.
            ulong slot = (pc * 0x9E3779B97F4A7C15UL) >> (64 - SlotShift);
            fixed (ushort* index = s_index.Slot) return index + slot;
        }

        private static Entry* EntryAt(int number)
        {
            fixed (byte* table = s_table.Bytes) return (Entry*)table + number;
        }

        /// <summary>The row for <paramref name="pc"/> in the object of <paramref
        /// name="header"/> into <paramref name="row"/>, if it is here.</summary>
        public static bool TryGet(ulong pc, ulong header, CallFrames.Row* row)
        {
            ushort n = *SlotOf(pc);
            if (n == 0) return false;
            Entry* e = EntryAt(n - 1);
            if (e->Pc != pc || e->Header != header) return false;
            row->CfaRegister = e->CfaRegister;
            row->CfaOffset = e->CfaOffset;
            row->CfaIsExpression = false;
            for (int r = 0; r < CallFrames.RegisterCount; r++)
            {
                byte rule = e->Rule[r];
                row->Rule[r] = rule;
                row->Offset[r] = rule == CallFrames.InRegister ? e->Slot[r] : (long)e->Slot[r] * 8;
            }
            Hits++;
            return true;
        }

        /// <summary>Keeps the row found for <paramref name="pc"/>, when it fits an entry.</summary>
        public static void Put(ulong pc, ulong header, CallFrames.Row* row)
        {
            if (row->CfaIsExpression || row->CfaOffset != (int)row->CfaOffset) return;
            if (s_used == Entries)
            {
                // Full: start again (the rows are found again as walks need them).
                fixed (ushort* index = s_index.Slot)
                    for (int i = 0; i < Slots; i++) index[i] = 0;
                s_used = 0;
            }
            Entry* e = EntryAt(s_used);
            for (int r = 0; r < CallFrames.RegisterCount; r++)
            {
                byte rule = row->Rule[r];
                long offset = row->Offset[r];
                long slot;
                switch (rule)
                {
                    case CallFrames.SavedAtCfa:
                    case CallFrames.CfaPlus:
                        if ((offset & 7) != 0) return;
                        slot = offset / 8;
                        break;
                    case CallFrames.InRegister: slot = offset; break;
                    default: slot = 0; break;    // same value, undefined, unsupported: no offset
                }
                if (slot < -128 || slot > 127) return;
                e->Rule[r] = rule;
                e->Slot[r] = (sbyte)slot;
            }
            e->CfaRegister = (sbyte)row->CfaRegister;
            e->CfaOffset = (int)row->CfaOffset;
            e->Header = header;
            e->Pc = pc;
            *SlotOf(pc) = (ushort)(++s_used);
        }
    }
}
