// Blocks and their 16-byte headers (docs/heap.md, "Blocks").
//
//   block ─▶ ┌───────────┬───────┬──────────┬───────┬───────┬───────────┐
//            │ prev u32  │ (u32) │ size u32 │ arena │ state │ check u16 │  16 bytes
//            ├───────────┴───────┴──────────┴───────┴───────┴───────────┤
//  payload ─▶│ user bytes (a free block: a pointer to its index node)   │
//            └───────────────────────────────────────────────────────────┘
//
// Sizes are in 16-byte units, so the block after `b` is at b + 16*size and the
// one before at b - 16*prev. The top bit of the arena byte says whether that block
// below is free (as glibc's PREV_INUSE bit does, the other way round): a free looks
// at its own header to know whether to merge downwards, instead of reading a header
// far below that is seldom in the CPU's caches. Whoever changes a block between
// free and not free updates the bit in the header above it, under the arena's lock.
//
// Everything a block needs while the block below it is in use is in the header's
// second half (size, arena, state, check); the first half (prev, and a word not used)
// is only needed while the block below is free, and while that block is in use it
// is the last 8 bytes of its payload: a block costs 8 bytes beyond its payload, as a
// glibc chunk does (docs/performance/header.md). So nothing may write a header's
// first half unless the block below is free (MarkPrevFree) or there is none
// (MarkFirst), and nothing reads it otherwise.
//
// `check` hashes the header's address with its size and arena, and whether the block's
// allocation was sampled (Heap/SampledBlocks.cs: a sampled block's check is the plain
// one with fixed bits flipped, so the free fast path's check fails on it and the free takes the
// path that removes the sample); a header that fails both was overwritten, or never was
// a header. Left out of the hash on purpose: `prev` and the free bit below (a
// neighbour's free may change them while the owner reads its own header without the
// arena lock) and `state` (it flips between used and cached on every fast-path malloc
// and free, which must not pay for a rehash; the states are spread-out byte values, so
// a stray write still rarely lands on a valid one).
//
// Who writes which byte, so that no two writers of one byte can race: the owner of a
// used block writes `state` (used and cached) and `check` (sampled) without a lock;
// the arena byte's free bit is written by whoever frees or takes the block below, under
// the arena's lock, as a byte of its own; everything else only while the block belongs
// to the heap, under that lock.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Konfiscator.Native.Heaps
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Block
    {
        public uint PrevTag;     // the size of the block below while it is free, in units; 0 for a region's first block (a large block: its offset in its mapping)
        public uint Spare;       // not used (with PrevTag: the block below's last payload bytes while it is in use)
        public uint SizeUnits;
        public byte ArenaTag;    // the arena's index, | Blocks.PrevFreeBit while the block below is free, | Blocks.FirstBit for a region's first
        public byte State;
        public ushort Check;
    }

    internal static unsafe class Blocks
    {
        /// <summary>Where the payload starts: 16 bytes above the block, so every payload is
        /// 16-byte aligned.</summary>
        public const int HeaderBytes = 16;
        /// <summary>What a block costs beyond its usable bytes: the header's second half. Its
        /// first half belongs to the block below while that block is in use, as the last 8
        /// usable bytes of its payload (glibc lends a chunk's prev_size field the same way).</summary>
        public const int Overhead = 8;
        public const int UnitShift = 4;
        public const uint MinUnits = 2;              // 32 bytes, 24 usable (glibc's smallest too)
        public const nuint MinBytes = 32;

        // States: distinct, unlikely byte patterns (never 0x00 or 0xFF).
        public const byte Used = 0xA1;
        public const byte Free = 0xF2;
        public const byte Large = 0xB3;
        public const byte Sentinel = 0xC4;
        public const byte Cached = 0xD5;   // in a thread cache: in use to the heap, free to the program

        /// <summary>A free block's purge marks (Arena.Purge.cs): one byte in the second word of
        /// its payload, not in the header, so that the header keeps only what every block needs
        /// (docs/performance/header.md). The first payload word holds the block's node pointer;
        /// the second is the block's own while it is free (the smallest block has 16 bytes of its
        /// own above its header: the 8 after them are the next header's, its footer while it
        /// is free), and purging leaves the block's first 32 bytes resident. Set clears the byte
        /// whenever it writes a free block, so any change to a free block clears its marks.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static byte* PurgeMarks(Block* b) => (byte*)b + HeaderBytes + 8;

        /// <summary>The block's state is used (its check says whether its allocation was sampled,
        /// which every path that acts on a used block looks at: CheckOkUnsampled, Heap.Validate).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsPlainUsed(Block* b) => b->State == Used;

        /// <summary>The arena byte: the arena's index in the low six bits (at most 64 arenas),
        /// FirstBit and PrevFreeBit above.</summary>
        private const uint ArenaMask = 0x3F;

        /// <summary>The arena the block belongs to.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ushort ArenaOf(Block* b) => (ushort)(b->ArenaTag & ArenaMask);

        /// <summary>The header's arena and state as one 16-bit word (arena low, state high), the
        /// bits about the block below masked out, to compare with PlainUsedTag.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint ArenaAndState(Block* b) => *(ushort*)&b->ArenaTag & ~(PrevFreeBit | FirstBit);

        /// <summary>ArenaAndState of a used block of arena <paramref name="arena"/>.</summary>
        public static uint PlainUsedTag(ushort arena) => arena | (uint)Used << 8;

        // A fixed key mixed into every check, so that plain values a program happens
        // to write (zeros, small integers, ASCII) do not pass by accident.
        private static readonly ulong s_checkKey = 0x9E3779B97F4A7C15;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static byte* Payload(Block* b) => (byte*)b + HeaderBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* FromPayload(void* p) => (Block*)((byte*)p - HeaderBytes);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nuint Bytes(Block* b) => (nuint)b->SizeUnits << UnitShift;

        /// <summary>The payload's bytes of heap block b (not a large one: LargeBlocks.Usable):
        /// from 16 bytes above the block to 8 bytes into the next header.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static nuint UsableBytes(Block* b) => ((nuint)b->SizeUnits << UnitShift) - Overhead;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Next(Block* b) => (Block*)((byte*)b + ((nuint)b->SizeUnits << UnitShift));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Prev(Block* b) => (Block*)((byte*)b - ((nuint)PrevSize(b) << UnitShift));

        /// <summary>In the arena byte: the block below is free, and its size is in PrevTag.</summary>
        public const uint PrevFreeBit = 0x80;
        /// <summary>In the arena byte: the block is its region's first (nothing below it).</summary>
        public const uint FirstBit = 0x40;

        /// <summary>The size in units of the block below b, read only while that block is free
        /// (PrevIsFree): while it is in use, the word is its last payload bytes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint PrevSize(Block* b) => b->PrevTag;

        /// <summary>True when the block below b is free.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool PrevIsFree(Block* b) => (b->ArenaTag & PrevFreeBit) != 0;

        /// <summary>True when b is its region's first block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsFirst(Block* b) => (b->ArenaTag & FirstBit) != 0;

        /// <summary>Records in b's header that the block below it is free and has
        /// <paramref name="units"/>: the size in the header's first half (the lower block's,
        /// free now, so no program's bytes), the bit as a store of the arena byte alone (the
        /// owner of b may be writing the state byte beside it).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void MarkPrevFree(Block* b, uint units)
        {
            b->PrevTag = units;
            b->ArenaTag = (byte)((b->ArenaTag & ArenaMask) | PrevFreeBit);
        }

        /// <summary>Records in b's header that the block below it is in use (or cached): the bit
        /// only, since the header's first half is now that block's payload.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void MarkPrevUsed(Block* b) => b->ArenaTag = (byte)(b->ArenaTag & ArenaMask);

        /// <summary>Records that b is its region's first block: nothing below it, so its first
        /// half is its own (PrevTag 0).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void MarkFirst(Block* b)
        {
            b->PrevTag = 0;
            b->ArenaTag = (byte)((b->ArenaTag & ArenaMask) | FirstBit);
        }

        /// <summary>Units of the block that serves a request of n bytes: max(32, round_up(n + 8, 16)).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint UnitsFor(nuint n)
        {
            nuint units = (n + Overhead + 15) >> UnitShift;
            return units < MinUnits ? MinUnits : (uint)units;
        }

        /// <summary>The check of b's header as it stands, for a block not sampled.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ushort ComputeCheck(Block* b) => CheckFromSeed(b, CheckSeed(b->SizeUnits, ArenaOf(b)));

        /// <summary>The same for a block whose allocation was sampled: the unsampled check with
        /// fixed bits flipped, so that the two can never be equal. (Hashed with another key, as
        /// it was, one header in 65 536 had the same 16-bit check both ways; such a sampled
        /// block read as unsampled, its free skipped the sample, and the sample stayed live
        /// for ever: a leak report of a block the program had freed.)</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ushort ComputeSampledCheck(Block* b) => (ushort)(ComputeCheck(b) ^ SampledFlip);

        /// <summary>Nonzero; any value would do, half of the bits set so that no single flipped
        /// bit of a corrupted header turns one check into the other.</summary>
        private const ushort SampledFlip = 0x5A3C;

        /// <summary>The check in two parts, so that many headers of one size and arena (a carved
        /// run) share the first: the part that does not depend on the address ...</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong CheckSeed(uint units, ushort arena) =>
            s_checkKey ^ ((ulong)units << 24) ^ ((ulong)arena << 8);

        /// <summary>... and the check of the header at b from it (ComputeCheck(b) once b's
        /// header holds those fields). One multiply by an odd constant carries every input bit
        /// into the high bits, whose top 16 are the check: cheap enough for every free.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ushort CheckFromSeed(Block* b, ulong seed) => (ushort)((((ulong)b ^ seed) * 0xFF51AFD7ED558CCD) >> 48);

        /// <summary>The header passes its check, sampled or not.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool CheckOk(Block* b) => b->Check == ComputeCheck(b) || b->Check == ComputeSampledCheck(b);

        /// <summary>The header passes its check as a block whose allocation was not sampled: what
        /// every fast path tests before it caches or frees a block (a sampled one fails and takes
        /// the path that removes its sample).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool CheckOkUnsampled(Block* b) => b->Check == ComputeCheck(b);

        /// <summary>CheckOkUnsampled for a block whose arena the caller read already.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool CheckOkUnsampled(Block* b, ushort arena) => b->Check == CheckFromSeed(b, CheckSeed(b->SizeUnits, arena));


        /// <summary>Writes the second half of a header (what it says of the block below is left
        /// as it is: a new header is followed by MarkPrevFree, MarkPrevUsed or MarkFirst) and
        /// seals it, not sampled: the size, arena, state and check as one store, the check
        /// computed from the values in hand. (Stored field by field and
        /// hashed from the header, as ComputeCheck does, it read every field back, since the
        /// compiler cannot know the stores between did not change them: 21 instructions against
        /// 12; every heap call writes two or three headers, docs/performance/fragmentation.md.)</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Set(Block* b, uint units, ushort arena, byte state)
        {
            if (state == Free) *PurgeMarks(b) = 0;   // a constant at every call site
            ulong check = CheckFromSeed(b, CheckSeed(units, arena));
            ulong tag = arena | (b->ArenaTag & (PrevFreeBit | FirstBit));
            *(ulong*)&b->SizeUnits = units | (tag << 32) | ((ulong)state << 40) | (check << 48);
        }

        /// <summary>Writes the headers of <paramref name="count"/> blocks of <paramref name="units"/>
        /// that follow each other from <paramref name="first"/> on, each with the one below as
        /// its (used) lower neighbour, in the given state, sealed: what Set and MarkPrevUsed write
        /// block by block, one store a header (a carved run, Arenas.TakeRun). The headers' first
        /// halves are the blocks' below, not written.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SetRun(Block* first, uint count, uint units, ushort arena, byte state)
        {
            ulong seed = CheckSeed(units, arena);
            ulong rest = units | ((ulong)arena << 32) | ((ulong)state << 40);         // SizeUnits, ArenaTag (below: used), State
            nuint step = (nuint)units << UnitShift;
            byte* end = (byte*)first + count * step;
            for (byte* p = (byte*)first; p < end; p += step)
            {
                ((ulong*)p)[1] = rest | ((ulong)CheckFromSeed((Block*)p, seed) << 48);
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
        /// <paramref name="seed"/> is CheckSeed(0, its arena).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Retire(Block* b, ulong seed)
        {
            b->State = Free;
            b->SizeUnits = 0;
            b->Check = CheckFromSeed(b, seed);
        }
    }
}
