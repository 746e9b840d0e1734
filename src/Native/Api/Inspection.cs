// glibc's inspection and tuning calls, answered from Konfiscator's own heap:
//   struct mallinfo2 mallinfo2(void)      struct mallinfo mallinfo(void)
//   void malloc_stats(void)               int malloc_trim(size_t pad)
//   int malloc_info(int options, FILE *fp) int mallopt(int param, int value)
//
// What glibc's fields mean here (docs/heap.md, "glibc's inspection calls"):
//   arena    bytes of the heap's regions (mapped from the OS for ordinary blocks)
//   ordblks  free blocks in the regions          fordblks  their bytes
//   uordblks arena - fordblks: blocks in use, their headers, blocks parked in thread caches
//   hblkhd   bytes mapped outside the regions: large blocks and the allocator's own tables
//   usmblks  the highest bytes in use so far (glibc leaves it 0; this is what it once meant)
//   keepcost bytes of wholly free regions (their whole mappings) and of the free pages at the
//            ends of the others: what malloc_trim unmaps (glibc: the size of its top chunk)
//   smblks, fsmblks, hblks: 0 (no fastbins; large blocks are not counted one by one)

using System.Runtime;
using System.Runtime.InteropServices;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Api
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MallInfo
    {
        public int Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    /// <summary>One arena's share of the figures, read under its lock.</summary>
    internal struct ArenaTotals
    {
        public ulong RegionBytes, FreeBytes, FreeBlocks, TrimmableBytes;
    }

    internal static unsafe class Inspection
    {
        // mallopt parameters (malloc.h).
        private const int M_MXFAST = 1, M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3,
                          M_MMAP_MAX = -4, M_CHECK_ACTION = -5, M_PERTURB = -6, M_ARENA_TEST = -7, M_ARENA_MAX = -8;

        private const int EINVAL = 22;

        // Reports are assembled in a static buffer (a stack buffer would need the runtime's
        // stack cookie), one report at a time.
        private const int TextCapacity = 512;
        private struct TextSpace { public fixed byte Bytes[TextCapacity]; }
#pragma warning disable CS0169 // only ever used through `fixed`, which the compiler does not count
        private static TextSpace s_text;
#pragma warning restore CS0169
        private static int s_textLock;

        private static byte* LockText()
        {
            fixed (int* w = &s_textLock) FutexLock.Acquire(w);
            fixed (byte* bytes = s_text.Bytes) return bytes; // statics never move: there is no GC
        }

        private static void UnlockText()
        {
            fixed (int* w = &s_textLock) FutexLock.Release(w);
        }

        // Returning a struct of more than 16 bytes by value is, in the SysV x86-64 ABI, a
        // hidden pointer to the caller's space in the first argument register, returned
        // again in rax. So `struct mallinfo2 mallinfo2(void)` is exactly this signature.

        [RuntimeExport("mallinfo2")]
        public static MallInfo2* Mallinfo2(MallInfo2* result)
        {
            Fill(result);
            return result;
        }

        [RuntimeExport("mallinfo")]
        public static MallInfo* Mallinfo(MallInfo* result)
        {
            MallInfo2 wide;
            Fill(&wide);
            // glibc's int fields simply wrap above 2 GiB; so do these.
            result->Arena = (int)wide.Arena;
            result->OrdBlks = (int)wide.OrdBlks;
            result->SmBlks = (int)wide.SmBlks;
            result->HBlks = (int)wide.HBlks;
            result->HBlkHd = (int)wide.HBlkHd;
            result->UsmBlks = (int)wide.UsmBlks;
            result->FsmBlks = (int)wide.FsmBlks;
            result->UordBlks = (int)wide.UordBlks;
            result->FordBlks = (int)wide.FordBlks;
            result->KeepCost = (int)wide.KeepCost;
            return result;
        }

        private static void Fill(MallInfo2* m)
        {
            Heap.EnsureStarted();
            ArenaTotals all = default;
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                ArenaTotals t = Read(Heap.ArenaAt(i));
                all.RegionBytes += t.RegionBytes;
                all.FreeBytes += t.FreeBytes;
                all.FreeBlocks += t.FreeBlocks;
                all.TrimmableBytes += t.TrimmableBytes;
            }
            ulong mapped = ProcessFigure(StatsLayout.BytesMapped);
            *m = default;
            m->Arena = (nuint)all.RegionBytes;
            m->OrdBlks = (nuint)all.FreeBlocks;
            m->FordBlks = (nuint)all.FreeBytes;
            m->UordBlks = (nuint)(all.RegionBytes - all.FreeBytes);
            m->HBlkHd = (nuint)(mapped > all.RegionBytes ? mapped - all.RegionBytes : 0);
            m->UsmBlks = (nuint)ProcessFigure(StatsLayout.PeakBytesInUse);
            m->KeepCost = (nuint)all.TrimmableBytes;
        }

        private static ArenaTotals Read(Arena* a)
        {
            ArenaTotals t = default;
            Heap.LockArena(a);
            for (Region* r = a->Regions; r != null; r = r->Next)
            {
                t.RegionBytes += r->Bytes;
                Block* first = Regions.FirstBlock(r);
                if (first->State == Blocks.Free && Regions.IsWholeRegion(first)) t.TrimmableBytes += r->Bytes;
                else t.TrimmableBytes += Regions.TrimmableTail(r, out _);
            }
            t.FreeBytes = a->Stats[StatsLayout.FreeBytes];
            t.FreeBlocks = a->Stats[StatsLayout.FreeBlocks];
            Heap.UnlockArena(a);
            return t;
        }

        /// <summary>A process-wide figure: slot 0 of the segment, which lies just below the
        /// first arena's slot (StatsLayout).</summary>
        private static ulong ProcessFigure(int counter) =>
            ((ulong*)((byte*)StatsWriter.ArenaSlot(0) - StatsLayout.SlotSize))[counter];

        // ---- malloc_stats ----

        /// <summary>glibc's report on stderr, in glibc's words, one arena at a time; written
        /// with write(2) like every message of the library.</summary>
        [RuntimeExport("malloc_stats")]
        public static void MallocStats()
        {
            Heap.EnsureStarted();
            byte* bytes = LockText();
            ulong system = 0, inUse = 0;
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                ArenaTotals t = Read(Heap.ArenaAt(i));
                if (t.RegionBytes == 0 && i > 0) continue; // an arena no thread has used yet
                system += t.RegionBytes;
                inUse += t.RegionBytes - t.FreeBytes;
                var text = new TextBuffer(bytes, TextCapacity);
                text.Append("Arena ");
                text.Append((ulong)i);
                text.Append(":\n");
                Line(ref text, "system bytes     = ", t.RegionBytes);
                Line(ref text, "in use bytes     = ", t.RegionBytes - t.FreeBytes);
                Write(ref text);
            }
            MallInfo2 m;
            Fill(&m);
            var total = new TextBuffer(bytes, TextCapacity);
            total.Append("Total (incl. mmap):\n");
            Line(ref total, "system bytes     = ", system + m.HBlkHd);
            Line(ref total, "in use bytes     = ", inUse + m.HBlkHd);
            Write(ref total);
            UnlockText();
        }

        /// <summary>"name = " and the value right-aligned in 10 columns, as glibc prints it.</summary>
        private static void Line(ref TextBuffer text, string name, ulong value)
        {
            text.Append(name);
            int digits = 1;
            for (ulong v = value / 10; v != 0; v /= 10) digits++;
            for (int i = digits; i < 10; i++) text.Append((byte)' ');
            text.Append(value);
            text.Append((byte)'\n');
        }

        private static void Write(ref TextBuffer text)
        {
            if (text.Complete) Libc.write(2, text.Pointer, (nuint)text.Length);
        }

        // ---- malloc_info ----

        [DllImport("libc")] private static extern nuint fwrite(void* data, nuint size, nuint count, void* stream);

        /// <summary>glibc's XML (&lt;malloc version="1"&gt;, a &lt;heap&gt; per arena, then totals),
        /// with Konfiscator's figures: free blocks are "rest" (there are no fastbins), "mmap" is
        /// hblkhd. Written with fwrite because the caller gives a FILE* (often an open_memstream):
        /// the one place the library calls stdio, with no lock of its own held, so stdio's own
        /// allocations are ordinary calls into this malloc.</summary>
        [RuntimeExport("malloc_info")]
        public static int MallocInfo(int options, void* stream)
        {
            if (options != 0)
            {
                Libc.SetErrno(EINVAL);
                return -1;
            }
            Heap.EnsureStarted();
            byte* bytes = LockText();
            int result = WriteInfo(bytes, stream) ? 0 : -1;
            UnlockText();
            return result;
        }

        private static bool WriteInfo(byte* bytes, void* stream)
        {
            var text = new TextBuffer(bytes, TextCapacity);
            text.Append("<malloc version=\"1\">\n");
            if (!Put(ref text, stream)) return false;
            ArenaTotals all = default;
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                ArenaTotals t = Read(Heap.ArenaAt(i));
                all.RegionBytes += t.RegionBytes;
                all.FreeBytes += t.FreeBytes;
                all.FreeBlocks += t.FreeBlocks;
                if (t.RegionBytes == 0 && i > 0) continue; // an arena no thread has used yet
                text = new TextBuffer(bytes, TextCapacity);
                text.Append("<heap nr=\"");
                text.Append((ulong)i);
                text.Append("\">\n<sizes>\n</sizes>\n");
                Totals(ref text, t.FreeBlocks, t.FreeBytes);
                Spaces(ref text, t.RegionBytes);
                text.Append("</heap>\n");
                if (!Put(ref text, stream)) return false;
            }
            MallInfo2 m;
            Fill(&m);
            text = new TextBuffer(bytes, TextCapacity);
            Totals(ref text, all.FreeBlocks, all.FreeBytes);
            Attribute(ref text, "<total type=\"mmap\" count=\"", 0, "\" size=\"", m.HBlkHd);
            Spaces(ref text, all.RegionBytes + m.HBlkHd);
            text.Append("</malloc>\n");
            return Put(ref text, stream);
        }

        private static void Totals(ref TextBuffer text, ulong freeBlocks, ulong freeBytes)
        {
            text.Append("<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
            Attribute(ref text, "<total type=\"rest\" count=\"", freeBlocks, "\" size=\"", freeBytes);
        }

        private static void Spaces(ref TextBuffer text, ulong system)
        {
            Attribute(ref text, "<system type=\"current\" size=\"", system, null, 0);
            Attribute(ref text, "<system type=\"max\" size=\"", system, null, 0);
            Attribute(ref text, "<aspace type=\"total\" size=\"", system, null, 0);
            Attribute(ref text, "<aspace type=\"mprotect\" size=\"", system, null, 0);
        }

        private static void Attribute(ref TextBuffer text, string head, ulong first, string middle, ulong second)
        {
            text.Append(head);
            text.Append(first);
            if (middle != null)
            {
                text.Append(middle);
                text.Append(second);
            }
            text.Append("\"/>\n");
        }

        private static bool Put(ref TextBuffer text, void* stream) =>
            text.Complete && fwrite(text.Pointer, 1, (nuint)text.Length, stream) == (nuint)text.Length;

        // ---- malloc_trim ----

        /// <summary>Gives free memory back to the OS: what the heap does after a refused
        /// mapping (Heap.TrimAfterFailedMapping: the calling thread's cached blocks go back to
        /// the heap, where they coalesce; blocks other threads freed are merged in; every wholly
        /// free region is unmapped, also the one an arena otherwise keeps, and the free pages at
        /// the end of every other region; the arenas keep their address-space reservations, in
        /// which the heap grows), then the whole pages inside every remaining free block are
        /// released.
        /// <paramref name="pad"/> is accepted and ignored (glibc keeps that much of its top
        /// chunk). Returns 1 when anything went back, 0 otherwise, as glibc does.</summary>
        [RuntimeExport("malloc_trim")]
        public static int MallocTrim(nuint pad)
        {
            Heap.EnsureStarted();
            ulong mappedBefore = ProcessFigure(StatsLayout.BytesMapped);
            Heap.TrimAfterFailedMapping(Heap.PeekCache(), keepReservations: true);
            bool released = ProcessFigure(StatsLayout.BytesMapped) < mappedBefore;
            for (int i = 0; i < Heap.ArenaCount; i++)
            {
                Arena* a = Heap.ArenaAt(i);
                Heap.LockArena(a);
                released |= ReleasePagesBelow(a->NodeRoot);
                Heap.UnlockArena(a);
            }
            return released ? 1 : 0;
        }

        /// <summary>With the lock held: releases the whole pages inside every free block,
        /// keeping its header and index link (the first MinBytes) and never reaching past its
        /// end, where the next block's header is.</summary>
        private static bool ReleasePagesBelow(Node* n)
        {
            if (n == null || FreeIndex.SubtreeMax(n) < (uint)(OsMemory.PageSize >> Blocks.UnitShift)) return false;
            bool any = ReleasePagesBelow(n->Left);
            Block* b = n->Block;
            nuint first = OsMemory.RoundUpToPage((nuint)b + Blocks.MinBytes);
            nuint end = ((nuint)b + Blocks.Bytes(b)) & ~(OsMemory.PageSize - 1);
            if (end > first && Libc.madvise((void*)first, end - first, Libc.MADV_DONTNEED) == 0) any = true;
            any |= ReleasePagesBelow(n->Right);
            return any;
        }

        // ---- mallopt ----

        /// <summary>Accepts every parameter glibc knows (returning 1, as glibc does) and honours
        /// the one that maps onto this heap: M_MMAP_THRESHOLD fixes the size from which a
        /// request gets a mapping of its own (up to 32 MiB, as glibc caps it), which also stops
        /// the threshold from rising. The others have no counterpart here (no fastbins, no top
        /// of heap, a fixed arena count, no perturbing) and are accepted without effect, like
        /// glibc's own M_MXFAST beyond its limit. An unknown parameter or a bad value: 0.</summary>
        [RuntimeExport("mallopt")]
        public static int Mallopt(int param, int value)
        {
            Heap.EnsureStarted();
            switch (param)
            {
                case M_MMAP_THRESHOLD:
                    if (value < 0 || (nuint)value > LargeBlocks.MaxThreshold) return 0;
                    LargeBlocks.FixThreshold((nuint)value);
                    return 1;
                case M_MXFAST:
                    return value >= 0 && value <= 160 ? 1 : 0;
                case M_TRIM_THRESHOLD:
                case M_TOP_PAD:
                case M_MMAP_MAX:
                case M_CHECK_ACTION:
                case M_PERTURB:
                    return 1;
                case M_ARENA_TEST:
                case M_ARENA_MAX:
                    return value > 0 ? 1 : 0;
                default:
                    return 0;
            }
        }
    }
}
