// The rows the unwinder found lately, by code address. A sampled stack mostly
// repeats the frames of the samples before it; a row found once is taken from here
// afterwards, without reading the object's tables (from its file: several system
// calls, ObjectFiles.cs) or running its instructions again.
//
// An entry also names the object's .eh_frame_hdr, which _dl_find_object reports for
// the address on every lookup anyway: if the object was unloaded and another loaded
// at the same address, the names differ and the entry is not used. Entries of 64
// bytes are written one after the other into a private mapping, touched as they come,
// so a program with a few allocation sites touches one page of it (a hashed table
// spread them over every page); an index of two-byte slots, twice as many as entries,
// in sets of four (a row takes an empty slot of its set, or the oldest one's), finds
// them. A row is kept compact: the rules of the 17 registers a walk follows, and offsets
// that are multiples of 8 within +-1 KiB (what compilers emit for x86-64); any other row
// is simply not kept. Under the unwinder's lock.
//
// The cache starts at 1 024 entries (64 KiB mapped, one page touched per 64 rows) and,
// when they are all used, grows four times, keeping its rows, up to 16 384 (1 MiB):
// a program whose allocations come from thousands of places (gcc's cc1) walks through
// more distinct return addresses than the first size holds, and when the cache started
// again empty at 1 024, every walk after that read the tables again: 6 system calls a
// sample on a large compile, 9% of cc1's time with the default sampling in this
// project's virtual machine (docs/profiling.md, "What a sample costs"). At the largest
// size it starts again empty.

using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class RowCache
    {
        private const int FirstEntries = 1024, MaxEntries = 16384, Growth = 4;
        private const int Ways = 4, WayShift = 2;

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

        private static Entry* s_entries;          // null until the first row is kept
        private static ushort* s_index;           // entry number + 1; 0: none
        private static int s_capacity, s_used, s_slotShift;

        public static ulong Hits;

        /// <summary>The first of the Ways index slots where <paramref name="pc"/>'s entry may be.</summary>
        private static ushort* SetOf(ulong pc)
        {
            // Mixed (a shift, a multiply, a shift) before the top bits are taken: the return
            // addresses of one function's call sites are nearly evenly spaced, and a product
            // alone sent 4 000 of them to 1 200 of 4 096 pairs of slots (tests/native/row_cache.c).
            ulong h = pc ^ (pc >> 33);
            h *= 0xFF51AFD7ED558CCDUL;
            h ^= h >> 33;
            return s_index + Ways * (h >> (64 - (s_slotShift - WayShift)));
        }

        /// <summary>Indexes entry number <paramref name="n"/> (+1) for <paramref name="pc"/>: in
        /// an empty slot of its set, else first, the others moving down one and the oldest no
        /// longer found. Four ways in eight bytes, one line: with one slot a pc, two hot rows on
        /// the same slot pushed each other out on every walk (a fifth more of gcc's opens of the
        /// tables), and with two, three call sites on one pair did so in turn, a hundred times in
        /// the 4 000 sites of the test.</summary>
        private static void Place(ulong pc, ushort n)
        {
            ushort* set = SetOf(pc);
            for (int way = 0; way < Ways; way++)
            {
                if (set[way] != 0) continue;
                set[way] = n;
                return;
            }
            for (int way = Ways - 1; way > 0; way--) set[way] = set[way - 1];
            set[0] = n;
        }

        /// <summary>The row for <paramref name="pc"/> in the object of <paramref
        /// name="header"/> into <paramref name="row"/>, if it is here.</summary>
        public static bool TryGet(ulong pc, ulong header, CallFrames.Row* row)
        {
            if (s_entries == null) return false;
            ushort* set = SetOf(pc);
            Entry* e = null;
            for (int way = 0; e == null && way < Ways; way++)
            {
                if (set[way] == 0) continue;
                Entry* candidate = s_entries + (set[way] - 1);
                if (candidate->Pc == pc && candidate->Header == header) e = candidate;
            }
            if (e == null) return false;
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
            if (s_used == s_capacity && !Grow())
            {
                if (s_entries == null) return;   // no memory for the first table: nothing is kept
                // Full at the largest size (or no memory for a larger one): start again, the
                // rows are found again as walks need them.
                for (int i = 0; i < 1 << s_slotShift; i++) s_index[i] = 0;
                s_used = 0;
            }
            Entry* e = s_entries + s_used;
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
            Place(pc, (ushort)(++s_used));
        }

        /// <summary>Maps the first table, or one four times larger than the full one with the
        /// rows the old one's index still finds, and unmaps the old. False at the largest
        /// size, or when the mapping fails (the caller then starts the table again empty).</summary>
        private static bool Grow()
        {
            int capacity = s_capacity == 0 ? FirstEntries : s_capacity * Growth;
            if (capacity > MaxEntries) return false;
            int slotShift = 1;
            while (1 << slotShift < 2 * capacity) slotShift++;
            nuint entryBytes = (nuint)capacity * (nuint)sizeof(Entry), indexBytes = (nuint)2 << slotShift;
            byte* memory = OsMemory.MapBookkeeping(entryBytes + indexBytes);
            if (memory == null) return false;
            Entry* oldEntries = s_entries;
            ushort* oldIndex = s_index;
            int oldCapacity = s_capacity, oldShift = s_slotShift, oldSlots = oldCapacity == 0 ? 0 : 1 << oldShift;

            s_entries = (Entry*)memory;
            s_index = (ushort*)(memory + entryBytes);
            s_capacity = capacity;
            s_slotShift = slotShift;
            s_used = 0;
            // The rows the old index finds, in the index's order (an entry that no slot finds
            // any more, pushed out of its set, stays behind).
            for (int i = 0; i < oldSlots; i++)
            {
                ushort n = oldIndex[i];
                if (n == 0) continue;
                s_entries[s_used] = oldEntries[n - 1];
                Place(s_entries[s_used].Pc, (ushort)(s_used + 1));
                s_used++;
            }
            if (oldEntries != null) OsMemory.UnmapBookkeeping(oldEntries, (nuint)oldCapacity * (nuint)sizeof(Entry) + ((nuint)2 << oldShift));
            return true;
        }
    }
}
