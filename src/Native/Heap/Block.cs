// Blocks and their 16-byte headers (docs/heap.md, "Blocks").
//
//   block ─▶ ┌──────────┬───────────┬───────┬───────┬───────┬──────────┐
//            │ size u32 │ prev u32  │ arena │ state │ flags │ check u32│  16 bytes
//            ├──────────┴───────────┴───────┴───────┴───────┴──────────┤
//  payload ─▶│ user bytes (a free block: a pointer to its index node)  │
//            └──────────────────────────────────────────────────────────┘
//
// Sizes are in 16-byte units, so the block after `b` is at b + 16*size and the
// one before at b - 16*prev. The top bit of `prev` says whether that block below
// is free (as glibc's PREV_INUSE bit does, the other way round): a free looks at
// its own header to know whether to merge downwards, instead of reading a header
// far below that is seldom in the CPU's caches. Whoever changes a block between
// free and not free updates the bit in the header above it. `check` hashes the header's address with its size,
// arena and flags; a header that fails it was overwritten, or never was a header.
// Two fields are left out of the hash on purpose: `prev` (a neighbour's free may
// change it while the owner reads its own header without the arena lock) and
// `state` (it flips between used and cached on every fast-path malloc and free,
// which must not pay for a rehash; the states are spread-out byte values, so a
// stray write still rarely lands on a valid one).

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Konfiscator.Native.Heaps
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Block
    {
        public uint SizeUnits;
        public uint PrevTag;     // the size of the block below, in units, | PrevFreeBit while it is free; 0 for a region's first block
        public ushort Arena;
        public byte State;
        public byte Flags;
        public uint Check;
    }

    internal static unsafe class Blocks
    {
        public const int HeaderBytes = 16;
        public const int UnitShift = 4;
        public const uint MinUnits = 2;              // 32 bytes: header + 16 payload bytes (glibc's smallest too)
        public const nuint MinBytes = 32;

        // States: distinct, unlikely byte patterns (never 0x00 or 0xFF).
        public const byte Used = 0xA1;
        public const byte Free = 0xF2;
        public const byte Large = 0xB3;
        public const byte Sentinel = 0xC4;
        public const byte Cached = 0xD5;   // in a thread cache: in use to the heap, free to the program

        /// <summary>A used block whose allocation was sampled (Heap/SampledBlocks.cs): its free
        /// must remove the sample.</summary>
        public const byte FlagSampled = 0x80;

        /// <summary>A free block's purge marks (Arena.Purge.cs): one byte in the second word of
        /// its payload, not in the header, so that the header keeps only what every block needs
        /// (docs/performance/header.md). The first payload word holds the block's node pointer;
        /// the second is the block's own while it is free (the smallest block has 16 payload
        /// bytes), and purging leaves the block's first 32 bytes resident. Set clears the byte
        /// whenever it writes a free block, so any change to a free block clears its marks.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static byte* PurgeMarks(Block* b) => (byte*)b + HeaderBytes + 8;

        /// <summary>State and flags read as one 16-bit word: equal to <see cref="Used"/> exactly
        /// when the block is used and carries no flag (not sampled), the free fast path's test.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsPlainUsed(Block* b) => *(ushort*)&b->State == Used;

        /// <summary>The header's arena, state and flags as one word (Arena is the low half, State
        /// and Flags the high bytes), to compare with PlainUsedTag.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint ArenaAndState(Block* b) => *(uint*)&b->Arena;

        /// <summary>ArenaAndState of a used block of arena <paramref name="arena"/> with no flags.</summary>
        public static uint PlainUsedTag(ushort arena) => arena | (uint)Used << 16;

        // A fixed key mixed into every check, so that plain values a program happens
        // to write (zeros, small integers, ASCII) do not pass by accident.
        private static readonly ulong s_checkKey = 0x9E3779B97F4A7C15;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static byte* Payload(Block* b) => (byte*)b + HeaderBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* FromPayload(void* p) => (Block*)((byte*)p - HeaderBytes);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nuint Bytes(Block* b) => (nuint)b->SizeUnits << UnitShift;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Next(Block* b) => (Block*)((byte*)b + ((nuint)b->SizeUnits << UnitShift));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Prev(Block* b) => (Block*)((byte*)b - ((nuint)PrevSize(b) << UnitShift));

        public const uint PrevFreeBit = 1u << 31;

        /// <summary>The size in units of the block below b (0: b is the first of its region).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint PrevSize(Block* b) => b->PrevTag & ~PrevFreeBit;

        /// <summary>True when the block below b is free.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool PrevIsFree(Block* b) => (b->PrevTag & PrevFreeBit) != 0;

        /// <summary>Records in b's header that the block below it has <paramref name="units"/> and is free or not.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SetPrev(Block* b, uint units, bool free) => b->PrevTag = free ? units | PrevFreeBit : units;

        /// <summary>Units of the block that serves a request of n bytes: max(32, round_up(n + 16, 16)).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint UnitsFor(nuint n)
        {
            nuint units = (n + HeaderBytes + 15) >> UnitShift;
            return units < MinUnits ? MinUnits : (uint)units;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint ComputeCheck(Block* b) => CheckFromSeed(b, CheckSeed(b->SizeUnits, b->Arena, b->Flags));

        /// <summary>The check in two parts, so that many headers of one size, arena and flags
        /// (a carved run) share the first: the part that does not depend on the address ...</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong CheckSeed(uint units, ushort arena, byte flags) =>
            s_checkKey ^ ((ulong)units << 24) ^ ((ulong)arena << 8) ^ ((ulong)flags << 56);

        /// <summary>... and the check of the header at b from it (ComputeCheck(b) once b's
        /// header holds those fields). One multiply by an odd constant carries every input bit
        /// into the high half, which is the check: cheap enough for every free.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint CheckFromSeed(Block* b, ulong seed) => (uint)((((ulong)b ^ seed) * 0xFF51AFD7ED558CCD) >> 32);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool CheckOk(Block* b) => b->Check == ComputeCheck(b);

        /// <summary>CheckOk for a block whose flags are known to be 0 (IsPlainUsed said so):
        /// the same hash as CheckFromSeed(b, CheckSeed(units, arena, 0)), spelt out because that
        /// form costs the free fast path about one instruction a call more (callgrind).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool CheckOkWithoutFlags(Block* b)
        {
            ulong x = (ulong)b ^ s_checkKey;
            x ^= ((ulong)b->SizeUnits << 24) ^ ((ulong)b->Arena << 8);
            return b->Check == (uint)((x * 0xFF51AFD7ED558CCD) >> 32);
        }

        /// <summary>Writes a whole header (prev is left as it is) and seals it: the size, then
        /// arena, state, flags (0) and check as one word, the check computed from the values
        /// in hand. (Stored field by field and hashed from the header, as ComputeCheck does,
        /// it read every field back, since the compiler cannot know the stores between did
        /// not change them: 21 instructions against 12; every heap call writes two or three
        /// headers, docs/performance/fragmentation.md.)</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Set(Block* b, uint units, ushort arena, byte state)
        {
            if (state == Free) *PurgeMarks(b) = 0;   // a constant at every call site
            b->SizeUnits = units;
            ulong check = CheckFromSeed(b, CheckSeed(units, arena, 0));
            *(ulong*)&b->Arena = arena | ((ulong)state << 16) | (check << 32);
        }

        /// <summary>Writes the headers of <paramref name="count"/> blocks of <paramref name="units"/>
        /// that follow each other from <paramref name="first"/> on, each with the one below as
        /// its (used) lower neighbour, in the given state, sealed: what Set and SetPrev write
        /// block by block, two stores a header (a carved run, Arenas.TakeRun).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SetRun(Block* first, uint count, uint units, ushort arena, byte state)
        {
            ulong seed = CheckSeed(units, arena, 0);
            ulong sizes = units | ((ulong)units << 32);                  // SizeUnits, PrevTag
            ulong rest = arena | ((ulong)state << 16);                   // Arena, State, Flags 0
            nuint step = (nuint)units << UnitShift;
            byte* end = (byte*)first + count * step;
            for (byte* p = (byte*)first; p < end; p += step)
            {
                ((ulong*)p)[0] = sizes;
                ((ulong*)p)[1] = rest | ((ulong)CheckFromSeed((Block*)p, seed) << 32);
            }
        }

        /// <summary>Changes only the state (not covered by the check).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SetState(Block* b, byte state) => b->State = state;

        /// <summary>Destroys a header that was merged into a lower neighbour, so a later
        /// free of the stale pointer is recognised as a double free rather than trusted.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Retire(Block* b)
        {
            b->State = Free;
            b->SizeUnits = 0;
            b->Check = ComputeCheck(b);
        }

        /// <summary>Retire for a block whose arena's part of the check is known:
        /// <paramref name="seed"/> is CheckSeed(0, its arena, 0).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Retire(Block* b, ulong seed)
        {
            b->State = Free;
            b->SizeUnits = 0;
            b->Check = CheckFromSeed(b, seed ^ ((ulong)b->Flags << 56));
        }
    }
}
