// The call frame information every object carries for its code (.eh_frame, DWARF's
// CFI as C++ exceptions use it): for a code address, where its caller's frame
// starts (the CFA) and where the caller's registers and the return address were
// saved. The unwinder (Unwinder.cs) reads this itself rather than through libgcc's
// _Unwind_Backtrace, which cost every process libgcc_s (128 KiB of resident
// pages in a program that does not load it on its own) and a loader lock a frame.
//
// Finding the entry of an address: glibc's _dl_find_object (2.35 and later: no
// lock, made for unwinders) names the object's .eh_frame_hdr, or, on an older
// glibc, dl_iterate_phdr walks the loaded objects for it. The header holds a table
// of (first address, entry) pairs sorted by address, which is searched by
// bisection. An object without that table is not walked through. The tables are
// read through ObjectFiles (from the object's file, so that their pages are not
// faulted into the process), and a row found is kept in RowCache.
//
// Every entry (FDE) points back at a common part (CIE) with the rules that hold at
// a function's first instruction; the entry's own instructions then change the
// rules address by address. Running both up to the address gives the row of the
// rules that hold there (DWARF 5, section 6.4). Only what compilers emit for
// x86-64 code is understood: a CFA of a register plus an offset, registers saved
// at an offset from the CFA, in another register or not at all. A CFA given by an
// expression (signal trampolines, PLT entries, stacks realigned by hand) ends the
// walk there: the row is reported as not found.
//
// Everything here runs with the unwinder's lock held (Unwinder.Walk), so the rows
// and the remembered states are statics: this library has no stack buffers.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class CallFrames
    {
        /// <summary>DWARF's x86-64 register numbers that matter here: 0-15 the general
        /// registers (6 is %rbp, 7 %rsp), 16 the return address.</summary>
        public const int RegisterCount = 17;
        public const int Rbx = 3, Rbp = 6, Rsp = 7, R12 = 12, R13 = 13, R14 = 14, R15 = 15, ReturnAddress = 16;

        // What a row says about a register of the caller.
        public const byte SameValue = 0;       // not changed by this frame (the default)
        public const byte Undefined = 1;       // not recoverable (the return address of a thread's first frame)
        public const byte SavedAtCfa = 2;      // saved in memory at CFA + Offset
        public const byte CfaPlus = 3;         // its value is CFA + Offset
        public const byte InRegister = 4;      // held in register Offset
        public const byte Unsupported = 5;     // given by an expression: not recovered

        /// <summary>The rules at one code address.</summary>
        public struct Row
        {
            public int CfaRegister;
            public long CfaOffset;
            public bool CfaIsExpression;
            public fixed byte Rule[RegisterCount];
            public fixed long Offset[RegisterCount];
        }

        private const int MaxRemembered = 8;
#pragma warning disable CS0649 // only ever used through pointers
        private struct RowStack { public Row R0, R1, R2, R3, R4, R5, R6, R7; }

        private static Row s_initial;        // the CIE's rules, for DW_CFA_restore
        private static RowStack s_remembered; // DW_CFA_remember_state's stack
#pragma warning restore CS0649

        /// <summary>struct dl_find_object of glibc on x86-64 (96 bytes; flags, map start and
        /// end, link map, eh_frame, seven reserved words).</summary>
        [StructLayout(LayoutKind.Sequential)]
        private struct FoundObject
        {
            public ulong Flags;
            public ulong MapStart, MapEnd, LinkMap, EhFrameHeader;
            public ulong Reserved0, Reserved1, Reserved2, Reserved3, Reserved4, Reserved5, Reserved6;
        }

        private static delegate* unmanaged<void*, FoundObject*, int> s_findObject;
        private static FoundObject s_found;

        /// <summary>The library's initializer: glibc's lock-free lookup, where there is one.</summary>
        public static void Initialize() =>
            s_findObject = (delegate* unmanaged<void*, FoundObject*, int>)DynamicLinker.Symbol(DynamicLinker.RTLD_DEFAULT, "_dl_find_object");

        /// <summary>The row of the rules at code address <paramref name="pc"/> into
        /// <paramref name="row"/>; false when the address has no entry the walk can use.</summary>
        public static bool FindRow(ulong pc, Row* row)
        {
            byte* header = FindHeader(pc, out void* linkMap, out ulong mapStart);
            if (header == null) return false;
            // Only with glibc's lookup is the header known to belong to the object that holds
            // pc right now (an entry of an unloaded object is then never used).
            bool cached = s_findObject != null;
            if (cached && RowCache.TryGet(pc, (ulong)header, row)) return true;
            ObjectFiles.Use((ulong)header, linkMap, mapStart);
            ulong fde = FindEntry((ulong)header, pc);
            if (fde == 0 || !RunToAddress(fde, pc, row)) return false;
            if (cached) RowCache.Put(pc, (ulong)header, row);
            return true;
        }

        /// <summary>The end of a walk: the object file in use, if any, is closed.</summary>
        public static void EndWalk()
        {
            ObjectFiles.Close();
            s_tableHeader = 0;
        }

        // ---- the object and its header ----


        /// <summary>The .eh_frame_hdr of the object holding pc, and (from glibc's lookup) the
        /// object's link map and lowest address, for ObjectFiles; null when none.</summary>
        private static byte* FindHeader(ulong pc, out void* linkMap, out ulong mapStart)
        {
            linkMap = null;
            mapStart = 0;
            if (s_findObject != null)
            {
                fixed (FoundObject* found = &s_found)
                {
                    if (s_findObject((void*)pc, found) != 0) return null;
                    linkMap = (void*)found->LinkMap;
                    mapStart = found->MapStart;
                    return (byte*)found->EhFrameHeader;
                }
            }
            s_search = pc;
            s_searchHeader = null;
            DynamicLinker.dl_iterate_phdr(&HeaderOfObject, null);
            return s_searchHeader;
        }

        private static ulong s_search;
        private static byte* s_searchHeader;

        [UnmanagedCallersOnly]
        private static int HeaderOfObject(DlPhdrInfo* info, nuint size, void* data)
        {
            bool holds = false;
            byte* header = null;
            for (int i = 0; i < info->HeaderCount; i++)
            {
                ElfProgramHeader* h = &info->Headers[i];
                ulong start = info->Address + h->VirtualAddress;
                if (h->Type == DynamicLinker.PT_LOAD && s_search - start < h->MemorySize) holds = true;
                if (h->Type == DynamicLinker.PT_GNU_EH_FRAME) header = (byte*)start;
            }
            if (!holds) return 0;
            s_searchHeader = header;
            return 1;
        }

        // ---- the sorted table of .eh_frame_hdr ----

        // Pointer encodings (DW_EH_PE_*): the low four bits the format, the next three how
        // the value is applied; 0xff means the field is absent.
        private const byte EncodingOmitted = 0xff;
        private const byte FormatMask = 0x0f, ApplyMask = 0x70, Indirect = 0x80;
        private const byte AbsolutePointer = 0x00, Uleb128 = 0x01, Udata2 = 0x02, Udata4 = 0x03, Udata8 = 0x04,
                           Sleb128 = 0x09, Sdata2 = 0x0a, Sdata4 = 0x0b, Sdata8 = 0x0c;
        private const byte PcRelative = 0x10, DataRelative = 0x30;

        /// <summary>The address of the FDE whose range holds pc, by bisection of the header's
        /// table; 0 when there is none or the header is not the usual one (version 1, a table
        /// of 4-byte offsets from the header: what every linker writes). Every read goes
        /// through ObjectFiles (from the file, each is a system call): a probe reads 4 bytes
        /// until the part of the table left fits the entry buffer, which is then read whole.</summary>
        private static ulong FindEntry(ulong header, ulong pc)
        {
            if (!TableOf(header, out ulong table, out ulong count)) return 0;
            ulong low = 0, high = count;            // the answer is in [low, high)
            int first;
            while (high - low > 1)
            {
                if ((high - low) * 8 <= EntryCapacity)
                {
                    fixed (byte* window = s_entryBytes.Bytes)
                    {
                        int* pairs = (int*)window;
                        ObjectFiles.Read(table + 8 * low, window, (int)((high - low) * 8));
                        ulong l = 0, h = high - low;
                        while (h - l > 1)
                        {
                            ulong m = (l + h) / 2;
                            if (header + (ulong)(long)pairs[2 * m] <= pc) l = m; else h = m;
                        }
                        if (header + (ulong)(long)pairs[2 * l] > pc) return 0;
                        return header + (ulong)(long)pairs[2 * l + 1];
                    }
                }
                ulong middle = (low + high) / 2;
                first = Probe(header, count, table + 8 * middle);
                if (header + (ulong)(long)first <= pc) low = middle; else high = middle;
            }
            // A table of one entry.
            fixed (byte* h = s_headerBytes.Bytes)
            {
                int* pair = (int*)h;
                ObjectFiles.Read(table + 8 * low, pair, 8);
                if (header + (ulong)(long)pair[0] > pc) return 0;
                return header + (ulong)(long)pair[1];
            }
        }

        // The bisection's probes, remembered. Every bisection of an object's table starts
        // with the same probes (the middle, then the middle of one half, ...), so the top
        // levels repeat from lookup to lookup: from the file, gcc's cc1 made seven 4-byte
        // reads a lookup, 6 000 system calls in a compile (strace). Direct-mapped by
        // address; an entry also names the object's header and its table's length, as
        // RowCache's entries name the header, so an object unloaded and another loaded at
        // the same address does not use them. 512 entries of 24 bytes, in the library's
        // zero-filled data: only the slots used are ever touched. Under the unwinder's lock.
        private const int ProbeSlotShift = 9;
        [StructLayout(LayoutKind.Sequential)]
        private struct ProbeEntry { public ulong Address; public ulong Header; public uint Count; public int Value; }
        private struct ProbeTable { public fixed byte Bytes[(1 << ProbeSlotShift) * 24]; }
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static ProbeTable s_probes;
#pragma warning restore CS0169, CS0649

        /// <summary>The 4-byte first address of the table entry at <paramref name="address"/>, of
        /// the table of <paramref name="count"/> entries after <paramref name="header"/>.</summary>
        private static int Probe(ulong header, ulong count, ulong address)
        {
            fixed (byte* table = s_probes.Bytes)
            {
                ProbeEntry* e = (ProbeEntry*)table + (int)((address * 0x9E3779B97F4A7C15UL) >> (64 - ProbeSlotShift));
                if (e->Address == address && e->Header == header && e->Count == (uint)count) return e->Value;
                int value;
                ObjectFiles.Read(address, &value, 4);
                e->Address = address;
                e->Header = header;
                e->Count = (uint)count;
                e->Value = value;
                return value;
            }
        }

        // The table of the object whose header was read last (one walk often looks up
        // several addresses of one object in a row); forgotten at the end of each walk.
        private static ulong s_tableHeader, s_table, s_tableCount;

        /// <summary>Where the header's table of (first address, entry) pairs starts, and its
        /// length; false when the header is not the usual one.</summary>
        private static bool TableOf(ulong header, out ulong table, out ulong count)
        {
            if (header == s_tableHeader)
            {
                table = s_table;
                count = s_tableCount;
                return true;
            }
            table = count = 0;
            fixed (byte* h = s_headerBytes.Bytes)
            {
                // Version, three encodings, then the .eh_frame pointer and the count (at most
                // 8 bytes each in the encodings accepted here).
                ObjectFiles.Read(header, h, HeaderBytes);
                if (h[0] != 1 || h[3] != (DataRelative | Sdata4)) return false;
                byte* p = h + 4;
                long shift = (long)header - (long)h;
                if (!ReadEncoded(ref p, h[1], header, shift, out _)) return false;       // the .eh_frame pointer
                if (!ReadEncoded(ref p, h[2], header, shift, out count) || count == 0) return false;
                table = header + (ulong)(p - h);
            }
            s_tableHeader = header;
            s_table = table;
            s_tableCount = count;
            return true;
        }

        // ---- one entry ----

        // An FDE and its CIE are copied whole into these before they are parsed (they are a
        // few dozen bytes; one larger than its buffer is parsed in place, through the mapping).
        // The entry buffer also holds the last part of the table a bisection reads (FindEntry),
        // which is done with it before the entry is read.
        private const int HeaderBytes = 20, EntryCapacity = 4096, CommonCapacity = 512;
        private struct HeaderBuffer { public fixed byte Bytes[HeaderBytes]; }
        private struct EntryBuffer { public fixed byte Bytes[EntryCapacity]; }
        private struct CommonBuffer { public fixed byte Bytes[CommonCapacity]; }
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static HeaderBuffer s_headerBytes;
        private static EntryBuffer s_entryBytes;
        private static CommonBuffer s_commonBytes;
#pragma warning restore CS0169, CS0649

        // The CIE in s_commonBytes: its address, the header of its object's table, its length.
        private static ulong s_commonAddress, s_commonHeader;
        private static uint s_commonLength;

        // From a file, one read of this many bytes usually holds a whole entry, its length
        // field included; through a mapping the length is read first (a read past the entry
        // could run off the mapping).
        private const int EntryGuess = 256, CommonGuess = 64;

        /// <summary>The entry (FDE or CIE) at <paramref name="address"/>: in <paramref
        /// name="buffer"/> if it fits, else where it is mapped; null for a terminator or a
        /// 64-bit entry. <paramref name="length"/> is its length field (the bytes after it),
        /// <paramref name="shift"/> turns a pointer into it back into its address (for
        /// pc-relative fields).</summary>
        private static byte* Load(ulong address, byte* buffer, int capacity, int guess, out uint length, out long shift)
        {
            shift = (long)address - (long)buffer;
            if (ObjectFiles.TryReadFile(address, buffer, guess))
            {
                length = *(uint*)buffer;
                if (length <= (uint)(guess - 4)) return length == 0 ? null : buffer;
            }
            else
            {
                uint l;
                ObjectFiles.Read(address, &l, 4);
                length = l;
            }
            if (length == 0 || length == 0xffffffff) return null;
            if (length > (uint)(capacity - 4))
            {
                shift = 0;
                return (byte*)address;
            }
            ObjectFiles.Read(address, buffer, (int)length + 4);
            return buffer;
        }

        /// <summary>Runs the CIE's and then the FDE's instructions up to pc into row.</summary>
        private static bool RunToAddress(ulong fdeAddress, ulong pc, Row* row)
        {
            fixed (byte* buffer = s_entryBytes.Bytes)
            {
                byte* fde = Load(fdeAddress, buffer, EntryCapacity, EntryGuess, out uint length, out long shift);
                if (fde == null) return false;                           // a terminator, or a 64-bit entry
                byte* fdeEnd = fde + 4 + length;
                ulong cie = fdeAddress + 4 - *(uint*)(fde + 4);           // the CIE pointer counts back from its own field
                if (!ReadCommon(cie, out Common common)) return false;

                byte* p = fde + 8;
                if (!ReadEncoded(ref p, common.FdeEncoding, 0, shift, out ulong start)) return false;
                // The range has the start's format but is a plain number (not applied to anything).
                if (!ReadEncoded(ref p, (byte)(common.FdeEncoding & FormatMask), 0, shift, out ulong range)) return false;
                if (pc < start || pc - start >= range) return false;
                if (common.HasAugmentationData) p += ReadUleb(ref p);   // the LSDA pointer: not needed

                // The CIE's instructions give the rules at the function's start; they are also
                // what DW_CFA_restore goes back to.
                Row* initial;
                fixed (Row* i = &s_initial) initial = i;
                Clear(initial);
                if (!Run(common.Instructions, common.End, &common, common.Shift, 0xFFFFFFFFFFFFFFFF, 0, initial, initial)) return false;
                Copy(row, initial);
                return Run(p, fdeEnd, &common, shift, pc, start, row, initial);
            }
        }

        /// <summary>What an FDE takes from its CIE.</summary>
        private struct Common
        {
            public ulong CodeAlignment;
            public long DataAlignment;
            public int ReturnColumn;
            public byte FdeEncoding;
            public bool HasAugmentationData;
            public byte* Instructions, End;
            public long Shift;                  // Instructions' address minus the pointer (Load)
        }

        private static bool ReadCommon(ulong address, out Common common)
        {
            common = default;
            byte* cie;
            uint length;
            fixed (byte* buffer = s_commonBytes.Bytes)
            {
                // An object's FDEs mostly share one CIE: the one in the buffer is read again only
                // for another address or another object (s_tableHeader: the table just bisected).
                if (address == s_commonAddress && s_tableHeader == s_commonHeader && s_commonHeader != 0)
                {
                    cie = buffer;
                    length = s_commonLength;
                    common.Shift = (long)address - (long)buffer;
                }
                else
                {
                    cie = Load(address, buffer, CommonCapacity, CommonGuess, out length, out common.Shift);
                    bool kept = cie == buffer;
                    s_commonAddress = kept ? address : 0;
                    s_commonHeader = kept ? s_tableHeader : 0;
                    s_commonLength = length;
                }
            }
            if (cie == null || *(uint*)(cie + 4) != 0) return false;
            common.End = cie + 4 + length;
            byte* p = cie + 8;
            byte version = *p++;
            if (version != 1 && version != 3 && version != 4) return false;
            byte* augmentation = p;
            while (*p != 0) p++;
            p++;
            if (version == 4) p += 2;                                   // address and segment sizes
            common.CodeAlignment = ReadUleb(ref p);
            common.DataAlignment = ReadSleb(ref p);
            common.ReturnColumn = version == 1 ? *p++ : (int)ReadUleb(ref p);
            common.FdeEncoding = AbsolutePointer;
            if (augmentation[0] == (byte)'z')
            {
                common.HasAugmentationData = true;
                ulong dataLength = ReadUleb(ref p);
                byte* dataEnd = p + dataLength;
                for (byte* a = augmentation + 1; *a != 0; a++)
                {
                    if (*a == (byte)'R') common.FdeEncoding = *p++;
                    else if (*a == (byte)'L') p++;                      // the LSDA's encoding
                    else if (*a == (byte)'P')
                    {
                        byte encoding = *p++;                           // the personality routine: skipped
                        if (!ReadEncoded(ref p, (byte)(encoding & ~Indirect), 0, common.Shift, out _)) return false;
                    }
                    else if (*a != (byte)'S' && *a != (byte)'B') return false;
                }
                p = dataEnd;
            }
            else if (augmentation[0] != 0)
            {
                return false;                                           // no 'z': unknown fields follow
            }
            if (common.ReturnColumn != ReturnAddress) return false;       // x86-64's return address column
            common.Instructions = p;
            return true;
        }

        /// <summary>A row copied field by field (a struct assignment this size would need the
        /// runtime's memmove helper, which this library does not have).</summary>
        private static void Copy(Row* to, Row* from)
        {
            to->CfaRegister = from->CfaRegister;
            to->CfaOffset = from->CfaOffset;
            to->CfaIsExpression = from->CfaIsExpression;
            for (int r = 0; r < RegisterCount; r++)
            {
                to->Rule[r] = from->Rule[r];
                to->Offset[r] = from->Offset[r];
            }
        }

        private static void Clear(Row* row)
        {
            row->CfaRegister = -1;
            row->CfaOffset = 0;
            row->CfaIsExpression = false;
            for (int r = 0; r < RegisterCount; r++)
            {
                row->Rule[r] = SameValue;
                row->Offset[r] = 0;
            }
        }

        // ---- the instructions (DW_CFA_*) ----

        private const byte AdvanceLoc = 0x40, Offset = 0x80, Restore = 0xc0;
        private const byte Nop = 0x00, SetLoc = 0x01, AdvanceLoc1 = 0x02, AdvanceLoc2 = 0x03, AdvanceLoc4 = 0x04,
                           OffsetExtended = 0x05, RestoreExtended = 0x06, UndefinedRule = 0x07, SameValueRule = 0x08,
                           RegisterRule = 0x09, RememberState = 0x0a, RestoreState = 0x0b, DefCfa = 0x0c,
                           DefCfaRegister = 0x0d, DefCfaOffset = 0x0e, DefCfaExpression = 0x0f, Expression = 0x10,
                           OffsetExtendedSf = 0x11, DefCfaSf = 0x12, DefCfaOffsetSf = 0x13, ValOffset = 0x14,
                           ValOffsetSf = 0x15, ValExpression = 0x16, GnuArgsSize = 0x2e, GnuNegativeOffsetExtended = 0x2f;

        /// <summary>Runs instructions [p, end) into row, starting at code address loc, until
        /// the address passes pc. False on an instruction this reader does not know.</summary>
        private static bool Run(byte* p, byte* end, Common* common, long shift, ulong pc, ulong loc, Row* row, Row* initial)
        {
            int remembered = 0;
            while (p < end)
            {
                byte op = *p++;
                byte high = (byte)(op & 0xc0), low = (byte)(op & 0x3f);
                ulong advance = 0;
                if (high == AdvanceLoc) advance = low;
                else if (high == Offset) { Set(row, low, SavedAtCfa, (long)ReadUleb(ref p) * common->DataAlignment); continue; }
                else if (high == Restore) { RestoreRule(row, initial, low); continue; }
                else
                {
                    switch (op)
                    {
                        case Nop: continue;
                        case SetLoc:
                            if (!ReadEncoded(ref p, common->FdeEncoding, 0, shift, out ulong to)) return false;
                            if (to > pc) return true;
                            loc = to;
                            continue;
                        case AdvanceLoc1: advance = *p; p += 1; break;
                        case AdvanceLoc2: advance = *(ushort*)p; p += 2; break;
                        case AdvanceLoc4: advance = *(uint*)p; p += 4; break;
                        case OffsetExtended: { ulong r = ReadUleb(ref p); Set(row, r, SavedAtCfa, (long)ReadUleb(ref p) * common->DataAlignment); continue; }
                        case OffsetExtendedSf: { ulong r = ReadUleb(ref p); Set(row, r, SavedAtCfa, ReadSleb(ref p) * common->DataAlignment); continue; }
                        case GnuNegativeOffsetExtended: { ulong r = ReadUleb(ref p); Set(row, r, SavedAtCfa, -(long)ReadUleb(ref p) * common->DataAlignment); continue; }
                        case ValOffset: { ulong r = ReadUleb(ref p); Set(row, r, CfaPlus, (long)ReadUleb(ref p) * common->DataAlignment); continue; }
                        case ValOffsetSf: { ulong r = ReadUleb(ref p); Set(row, r, CfaPlus, ReadSleb(ref p) * common->DataAlignment); continue; }
                        case RestoreExtended: RestoreRule(row, initial, ReadUleb(ref p)); continue;
                        case UndefinedRule: Set(row, ReadUleb(ref p), Undefined, 0); continue;
                        case SameValueRule: Set(row, ReadUleb(ref p), SameValue, 0); continue;
                        case RegisterRule: { ulong r = ReadUleb(ref p); ulong from = ReadUleb(ref p); Set(row, r, from < RegisterCount ? InRegister : Unsupported, (long)from); continue; }
                        case Expression:
                        case ValExpression: { ulong r = ReadUleb(ref p); p += ReadUleb(ref p); Set(row, r, Unsupported, 0); continue; }
                        case RememberState:
                            if (remembered == MaxRemembered) return false;
                            Copy(Remembered(remembered++), row);
                            continue;
                        case RestoreState:
                        {
                            if (remembered == 0) return false;
                            Copy(row, Remembered(--remembered));
                            continue;
                        }
                        case DefCfa:
                            row->CfaRegister = (int)ReadUleb(ref p);
                            row->CfaOffset = (long)ReadUleb(ref p);
                            row->CfaIsExpression = false;
                            continue;
                        case DefCfaSf:
                            row->CfaRegister = (int)ReadUleb(ref p);
                            row->CfaOffset = ReadSleb(ref p) * common->DataAlignment;
                            row->CfaIsExpression = false;
                            continue;
                        case DefCfaRegister: row->CfaRegister = (int)ReadUleb(ref p); row->CfaIsExpression = false; continue;
                        case DefCfaOffset: row->CfaOffset = (long)ReadUleb(ref p); continue;
                        case DefCfaOffsetSf: row->CfaOffset = ReadSleb(ref p) * common->DataAlignment; continue;
                        case DefCfaExpression: p += ReadUleb(ref p); row->CfaIsExpression = true; continue;
                        case GnuArgsSize: ReadUleb(ref p); continue;
                        default: return false;
                    }
                }
                loc += advance * common->CodeAlignment;
                if (loc > pc) return true;
            }
            return true;
        }

        private static Row* Remembered(int i)
        {
            fixed (Row* first = &s_remembered.R0) return first + i;
        }

        /// <summary>Sets register r's rule; rules of registers past the return address
        /// (vector registers) are not needed for a walk and are dropped.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Set(Row* row, ulong r, byte rule, long offset)
        {
            if (r >= RegisterCount) return;
            row->Rule[r] = rule;
            row->Offset[r] = offset;
        }

        private static void RestoreRule(Row* row, Row* initial, ulong r)
        {
            if (r >= RegisterCount) return;
            row->Rule[r] = initial->Rule[r];
            row->Offset[r] = initial->Offset[r];
        }

        // ---- numbers ----

        private static ulong ReadUleb(ref byte* p)
        {
            ulong value = 0;
            int shift = 0;
            byte b;
            do
            {
                b = *p++;
                if (shift < 64) value |= (ulong)(b & 0x7f) << shift;
                shift += 7;
            } while ((b & 0x80) != 0);
            return value;
        }

        private static long ReadSleb(ref byte* p)
        {
            long value = 0;
            int shift = 0;
            byte b;
            do
            {
                b = *p++;
                if (shift < 64) value |= (long)(b & 0x7f) << shift;
                shift += 7;
            } while ((b & 0x80) != 0);
            if (shift < 64 && (b & 0x40) != 0) value |= -1L << shift;   // sign-extend
            return value;
        }

        /// <summary>A pointer in <paramref name="encoding"/> at p (moved past it). Relative to
        /// the field's own address, p + <paramref name="shift"/> (pcrel: p may point into a
        /// copy), or to <paramref name="dataBase"/> (datarel: the header; 0 for none); false
        /// for an encoding this reader does not know.</summary>
        private static bool ReadEncoded(ref byte* p, byte encoding, ulong dataBase, long shift, out ulong value)
        {
            value = 0;
            if (encoding == EncodingOmitted) return true;
            byte* field = p;
            switch (encoding & FormatMask)
            {
                case AbsolutePointer: value = *(ulong*)p; p += 8; break;
                case Uleb128: value = ReadUleb(ref p); break;
                case Udata2: value = *(ushort*)p; p += 2; break;
                case Udata4: value = *(uint*)p; p += 4; break;
                case Udata8: value = *(ulong*)p; p += 8; break;
                case Sleb128: value = (ulong)ReadSleb(ref p); break;
                case Sdata2: value = (ulong)(long)*(short*)p; p += 2; break;
                case Sdata4: value = (ulong)(long)*(int*)p; p += 4; break;
                case Sdata8: value = *(ulong*)p; p += 8; break;
                default: return false;
            }
            switch (encoding & ApplyMask)
            {
                case 0: break;
                case PcRelative: value += (ulong)((long)field + shift); break;
                case DataRelative:
                    if (dataBase == 0) return false;
                    value += dataBase;
                    break;
                default: return false;
            }
            if ((encoding & Indirect) != 0) value = *(ulong*)value;
            return true;
        }
    }
}
