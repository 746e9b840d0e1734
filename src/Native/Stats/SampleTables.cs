// The sample tables (layout: Shared/SampleLayout.cs): live samples, interned
// stacks, mapped objects and the copy taken at the peak.
//
// The tables are kept twice. A private copy is the truth: it is what a fork
// child inherits consistently (the lock is held across fork) and what the leak
// report reads at exit. The published copy, in the process's segment file, is
// a mirror written entry by entry with the sequence-word protocol, so the tool
// can read it lock-free while the process runs, and after it has exited.
//
// Everything here runs under one lock that is a leaf: nothing is called with it
// held that could allocate, unwind or take another lock. It is taken about once
// per sampled allocation and once per free of a sampled block (every 512 KiB
// allocated, by default), so one lock for the process costs nothing measurable.
//
// Private indexes (not published): address -> slot (open addressing, linear
// probing, deletion by backward shift, so no tombstones), stack hash -> stack id,
// and a stack of free slots.

using System.Threading;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Stats
{
    internal static unsafe class SampleTables
    {
        // The address index grows with the live samples (it starts at 1024 entries and
        // doubles at half full, up to 2 x SampleCapacity): a hash spreads its entries over
        // every page it has, so a fixed large one would make each sample touch a new page.
        private const int FirstAddressBits = 10;
        private const int MaxAddressBits = 17;
        private static int s_addressBits = FirstAddressBits;
        private static int s_addressCount;
        private static uint AddressCapacity => 1u << s_addressBits;
        // The stack index grows the same way, from 512 entries (one page) to 2 x StackCapacity:
        // at its full 32 KiB from the start, a program's first few stacks each touched a page
        // of it (28 KiB more resident in a program with a handful of allocation sites).
        private const int FirstStackIndexBits = 9;
        private const int MaxStackIndexBits = 13;
        private static int s_stackIndexBits = FirstStackIndexBits;
        private static uint StackIndexCapacity => 1u << s_stackIndexBits;
        /// <summary>A new peak is copied at most this often (ms); one seen in between is
        /// copied at the next free of a sampled block, before that block leaves the table.</summary>
        private const long PeakIntervalMs = 10;

        private const uint NoSlot = 0xFFFFFFFF;
        private static byte* s_private;
        private static byte* s_shared;     // the mirror in the segment file, or null
        private static ulong* s_addressKeys;
        private static uint* s_addressSlots;
        private static uint* s_stackIndex; // stack id + 1, 0 = empty
        private static uint* s_freeSlots;
        private static int s_freeCount;
        private static ulong s_peakBytes, s_peakPending;
        private static long s_peakMs;

        public static bool Ready => s_private != null;
        public static byte* Private => s_private;

        /// <summary>Maps the private tables and writes the header. Once, at start-up.</summary>
        public static bool Initialize(ulong mean, uint state)
        {
            s_private = MapPrivate((nuint)SampleLayout.RegionBytes);
            s_addressKeys = (ulong*)MapPrivate((nuint)AddressCapacity * 8);
            s_addressSlots = (uint*)MapPrivate((nuint)AddressCapacity * 4);
            s_stackIndex = (uint*)MapPrivate((nuint)StackIndexCapacity * 4);
            s_freeSlots = (uint*)MapPrivate((nuint)SampleLayout.SampleCapacity * 4);
            if (s_private == null || s_addressKeys == null || s_addressSlots == null || s_stackIndex == null || s_freeSlots == null)
            {
                s_private = null;
                return false;
            }
            byte* h = s_private;
            *(uint*)(h + SampleLayout.OffVersion) = SampleLayout.Version;
            *(uint*)(h + SampleLayout.OffHeaderBytes) = SampleLayout.HeaderBytes;
            *(uint*)(h + SampleLayout.OffSampleCapacity) = SampleLayout.SampleCapacity;
            *(uint*)(h + SampleLayout.OffSampleEntryBytes) = SampleLayout.SampleEntryBytes;
            *(uint*)(h + SampleLayout.OffStackCapacity) = SampleLayout.StackCapacity;
            *(uint*)(h + SampleLayout.OffStackEntryBytes) = SampleLayout.StackEntryBytes;
            *(uint*)(h + SampleLayout.OffMaxFrames) = SampleLayout.MaxFrames;
            *(uint*)(h + SampleLayout.OffModuleCapacity) = SampleLayout.ModuleCapacity;
            *(uint*)(h + SampleLayout.OffModuleEntryBytes) = SampleLayout.ModuleEntryBytes;
            *(uint*)(h + SampleLayout.OffState) = state;
            *(ulong*)(h + SampleLayout.OffMeanBytes) = mean;
            *(ulong*)(h + SampleLayout.OffMagic) = SampleLayout.Magic;
            if (s_shared != null) CopyAll();
            return true;
        }

        private static byte* MapPrivate(nuint bytes) => OsMemory.MapBookkeeping(bytes);

        private static void UnmapPrivate(void* p, nuint bytes) => OsMemory.UnmapBookkeeping(p, bytes);

        /// <summary>Publishes into <paramref name="shared"/> (a segment file's region, at
        /// <paramref name="fileOffset"/> in the file; null: nowhere) from now on, copying what
        /// the tables hold. Start-up or a fork child only.</summary>
        public static void Attach(byte* shared, nuint fileOffset)
        {
            s_shared = shared;
            s_fileOffset = fileOffset;
            for (int i = 0; i < SectionCount; i++) BackedEnds[i] = SectionStart(i);
            if (shared != null && s_private != null) CopyAll();
        }

        // ---- space in the file ----
        //
        // A store into a page of the file that the filesystem cannot back (a full tmpfs)
        // raises SIGBUS, so every page is reserved (SegmentFile.Reserve, fallocate) before
        // the mirror writes to it: per section, in chunks, as the section's used part grows.
        // If a reservation fails, the tables stop being published (the private copy, the leak
        // report and sampling go on) and the published header says so.

        private const int SectionCount = 5;
        private const long ReserveChunk = 64 << 10;
        private static nuint s_fileOffset;
        private struct Ends { public fixed long Values[SectionCount]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static Ends s_ends;
#pragma warning restore CS0169
        private static long* BackedEnds { get { fixed (long* e = s_ends.Values) return e; } }

        private static long SectionStart(int i) => i switch
        {
            0 => 0,
            1 => SampleLayout.SamplesOffset,
            2 => SampleLayout.StacksOffset,
            3 => SampleLayout.ModulesOffset,
            _ => SampleLayout.PeakOffset,
        };

        private static long SectionEnd(int i) => i < SectionCount - 1 ? SectionStart(i + 1) : SampleLayout.RegionBytes;

        /// <summary>True when region bytes [offset, end) may be stored to in the file; false
        /// (and publishing stops) when they cannot be backed.</summary>
        private static bool Backed(long offset, long end)
        {
            if (s_shared == null) return false;
            int section = SectionCount - 1;
            while (section > 0 && offset < SectionStart(section)) section--;
            long* backed = BackedEnds;
            if (end <= backed[section]) return true;
            long to = SectionStart(section) + (end - SectionStart(section) + ReserveChunk - 1) / ReserveChunk * ReserveChunk;
            if (to > SectionEnd(section)) to = SectionEnd(section);
            if (!SegmentFile.Reserve(s_fileOffset + (nuint)backed[section], s_fileOffset + (nuint)to))
            {
                Unpublish();
                return false;
            }
            backed[section] = to;
            return true;
        }

        /// <summary>No more space in the file: say so in the published header (its page is
        /// backed) and keep the tables private from now on.</summary>
        private static void Unpublish()
        {
            if (s_shared != null && BackedEnds[0] >= SampleLayout.HeaderBytes)
                *(uint*)(s_shared + SampleLayout.OffState) = SampleLayout.StateUnpublished;
            s_shared = null;
        }

        public static void SetState(uint state)
        {
            if (s_private == null) return;
            Lock();
            *(uint*)(s_private + SampleLayout.OffState) = state;
            MirrorHeader();
            Unlock();
        }

        public static uint State => s_private == null ? SampleLayout.StateNotStarted : *(uint*)(s_private + SampleLayout.OffState);

        // ---- the lock ----

        public static void Lock() { fixed (int* w = &ForkLocks.SampleTables) FutexLock.Acquire(w); }
        public static void Unlock() { fixed (int* w = &ForkLocks.SampleTables) FutexLock.Release(w); }
        public static void ResetLockAfterFork() { fixed (int* w = &ForkLocks.SampleTables) FutexLock.ResetAfterFork(w); }

        // ---- counters ----

        private static ulong* Counters => (ulong*)(s_private + SampleLayout.OffCounters);

        /// <summary>Counts an event under the lock (for callers outside Record/Remove).</summary>
        public static void Count(int counter)
        {
            if (s_private == null) return;
            Lock();
            Counters[counter]++;
            MirrorHeader();
            Unlock();
        }

        // ---- samples ----

        /// <summary>Records a sample of the block at <paramref name="address"/>, standing for
        /// <paramref name="weight"/> bytes (the sampler's estimate); false when there was no
        /// room (the block is then not flagged as sampled).</summary>
        public static bool Record(ulong address, ulong size, double weight, ulong* frames, int depth, uint thread,
                                  long reentrant, long stale, long forkSkips)
        {
            Lock();
            ulong* c = Counters;
            c[SampleLayout.CounterReentrant] = (ulong)reentrant;
            c[SampleLayout.CounterStaleFrees] = (ulong)stale;
            c[SampleLayout.CounterForking] = (ulong)forkSkips;
            c[SampleLayout.CounterSamples]++;
            c[SampleLayout.CounterSampledBytes] += size;
            uint stack = Intern(frames, depth, size, weight);
            // A stale entry for this address (its free could not update the table) goes first.
            RemoveLocked(address, countUnknown: false);
            uint slot = TakeSlot();
            bool recorded = slot != NoSlot;
            if (!recorded)
            {
                c[SampleLayout.CounterTableFull]++;
            }
            else
            {
                long offset = SampleOffset(slot);
                byte* e = s_private + offset;
                *(ulong*)(e + SampleLayout.SampleAddress) = address;
                *(ulong*)(e + SampleLayout.SampleSize) = size;
                *(ulong*)(e + SampleLayout.SampleTimeNs) = Clock.RealtimeNanoseconds();
                *(uint*)(e + SampleLayout.SampleStack) = stack;
                *(uint*)(e + SampleLayout.SampleThread) = thread;
                MirrorEntry(offset, SampleLayout.SampleEntryBytes);
                IndexInsert(address, slot);
                c[SampleLayout.CounterLiveSamples]++;
                MaybeTakePeak();
            }
            MirrorHeader();
            Unlock();
            return recorded;
        }

        /// <summary>A sampled block was resized: its entry gets the new address and size. False
        /// when it has no entry (the block is then no longer flagged).</summary>
        public static bool Move(ulong from, ulong to, ulong size)
        {
            Lock();
            uint slot = IndexRemove(from);
            if (slot != NoSlot)
            {
                if (to != from) RemoveLocked(to, countUnknown: false); // a stale entry at the new address
                long offset = SampleOffset(slot);
                byte* e = s_private + offset;
                *(ulong*)(e + SampleLayout.SampleAddress) = to;
                *(ulong*)(e + SampleLayout.SampleSize) = size;
                MirrorEntry(offset, SampleLayout.SampleEntryBytes);
                IndexInsert(to, slot);
            }
            else
            {
                Counters[SampleLayout.CounterUnknownFrees]++;
            }
            MirrorHeader();
            Unlock();
            return slot != NoSlot;
        }

        /// <summary>The block at <paramref name="address"/>, flagged as sampled, is freed.</summary>
        public static void Remove(ulong address)
        {
            Lock();
            // A new peak seen since the last copy: this is the last moment the table still
            // holds it (sampled blocks only leave it here).
            if (s_peakPending > s_peakBytes) TakePeak(s_peakPending, Clock.CoarseMilliseconds());
            RemoveLocked(address, countUnknown: true);
            MirrorHeader();
            Unlock();
        }

        private static void RemoveLocked(ulong address, bool countUnknown)
        {
            uint slot = IndexRemove(address);
            if (slot == NoSlot)
            {
                if (countUnknown) Counters[SampleLayout.CounterUnknownFrees]++;
                return;
            }
            long offset = SampleOffset(slot);
            byte* e = s_private + offset;
            *(ulong*)(e + SampleLayout.SampleAddress) = 0;
            *(ulong*)(e + SampleLayout.SampleSize) = 0;
            *(uint*)(e + SampleLayout.SampleStack) = 0;
            MirrorEntry(offset, SampleLayout.SampleEntryBytes);
            s_freeSlots[s_freeCount++] = slot;
            Counters[SampleLayout.CounterLiveSamples]--;
        }

        private static long SampleOffset(uint slot) => SampleLayout.SamplesOffset + (long)slot * SampleLayout.SampleEntryBytes;

        private static uint TakeSlot()
        {
            if (s_freeCount > 0) return s_freeSlots[--s_freeCount];
            uint* highWater = (uint*)(s_private + SampleLayout.OffSamplesHighWater);
            if (*highWater >= SampleLayout.SampleCapacity) return NoSlot;
            return (*highWater)++;
        }

        // ---- stacks ----

        private static uint Intern(ulong* frames, int depth, ulong size, double weight)
        {
            ulong hash = 0xCBF29CE484222325;
            for (int i = 0; i < depth; i++) hash = (hash ^ frames[i]) * 0x100000001B3;
            hash ^= (ulong)depth;
            uint* used = (uint*)(s_private + SampleLayout.OffStacksUsed);
            if (2 * (*used + 1) > StackIndexCapacity && s_stackIndexBits < MaxStackIndexBits) GrowStackIndex(*used);
            uint i0 = StackHome(hash);
            uint id = SampleLayout.UnknownStack;
            for (uint probe = 0; probe < StackIndexCapacity; probe++)
            {
                uint at = (i0 + probe) & (StackIndexCapacity - 1);
                uint held = s_stackIndex[at];
                if (held == 0)
                {
                    if (*used >= SampleLayout.StackCapacity)
                    {
                        Counters[SampleLayout.CounterStackTableFull]++;
                        return SampleLayout.UnknownStack;
                    }
                    id = (*used)++;
                    byte* s = StackEntry(id);
                    *(ulong*)(s + SampleLayout.StackHash) = hash;
                    *(uint*)(s + SampleLayout.StackDepth) = (uint)depth;
                    Libc.memcpy(s + SampleLayout.StackFrames, frames, (nuint)(depth * 8));
                    s_stackIndex[at] = id + 1;
                    break;
                }
                byte* e = StackEntry(held - 1);
                if (*(ulong*)(e + SampleLayout.StackHash) == hash && *(uint*)(e + SampleLayout.StackDepth) == (uint)depth
                    && SameFrames((ulong*)(e + SampleLayout.StackFrames), frames, depth))
                {
                    id = held - 1;
                    break;
                }
            }
            if (id == SampleLayout.UnknownStack)
            {
                Counters[SampleLayout.CounterStackTableFull]++;
                return id;
            }
            byte* entry = StackEntry(id);
            double objects = size == 0 ? 1 : weight / size;
            *(ulong*)(entry + SampleLayout.StackAllocSamples) += 1;
            *(ulong*)(entry + SampleLayout.StackAllocBytes) += (ulong)(weight + 0.5);
            *(ulong*)(entry + SampleLayout.StackAllocObjects) += (ulong)(objects * SampleLayout.ObjectsFixedPoint + 0.5);
            MirrorEntry(SampleLayout.StacksOffset + (long)id * SampleLayout.StackEntryBytes, SampleLayout.StackEntryBytes);
            return id;
        }

        private static uint StackHome(ulong hash) => (uint)((hash * 0x9E3779B97F4A7C15) >> (64 - s_stackIndexBits));

        /// <summary>Twice the entries; the <paramref name="stacks"/> interned so far placed again by
        /// the hash each entry keeps. Under the lock; if the new index cannot be mapped, it stays
        /// as it is (it is then fuller than half, and lookups probe longer).</summary>
        private static void GrowStackIndex(uint stacks)
        {
            uint oldCapacity = StackIndexCapacity;
            uint* index = (uint*)MapPrivate((nuint)oldCapacity * 2 * 4);
            if (index == null) return;
            uint* old = s_stackIndex;
            s_stackIndex = index;
            s_stackIndexBits++;
            for (uint id = 0; id < stacks; id++)
            {
                uint at = StackHome(*(ulong*)(StackEntry(id) + SampleLayout.StackHash));
                while (s_stackIndex[at] != 0) at = (at + 1) & (StackIndexCapacity - 1);
                s_stackIndex[at] = id + 1;
            }
            UnmapPrivate(old, (nuint)oldCapacity * 4);
        }

        private static byte* StackEntry(uint id) => s_private + SampleLayout.StacksOffset + (long)id * SampleLayout.StackEntryBytes;

        private static bool SameFrames(ulong* a, ulong* b, int depth)
        {
            for (int i = 0; i < depth; i++) if (a[i] != b[i]) return false;
            return true;
        }

        // ---- modules ----

        /// <summary>Records a mapped object unless it is known already. Called for each object
        /// when the set of loaded objects changed.</summary>
        public static void AddModule(ulong loadBias, ulong start, ulong end, byte* path, int pathLength)
        {
            Lock();
            uint* used = (uint*)(s_private + SampleLayout.OffModulesUsed);
            bool known = false;
            for (uint i = 0; i < *used && !known; i++)
            {
                byte* m = s_private + SampleLayout.ModulesOffset + (long)i * SampleLayout.ModuleEntryBytes;
                known = *(ulong*)(m + SampleLayout.ModuleBase) == loadBias && *(ulong*)(m + SampleLayout.ModuleStart) == start
                        && *(ulong*)(m + SampleLayout.ModuleEnd) == end && *(uint*)(m + SampleLayout.ModulePathLength) == (uint)pathLength;
            }
            if (!known)
            {
                if (*used >= SampleLayout.ModuleCapacity)
                {
                    Counters[SampleLayout.CounterModuleTableFull]++;
                }
                else
                {
                    long offset = SampleLayout.ModulesOffset + (long)*used * SampleLayout.ModuleEntryBytes;
                    byte* m = s_private + offset;
                    *(ulong*)(m + SampleLayout.ModuleBase) = loadBias;
                    *(ulong*)(m + SampleLayout.ModuleStart) = start;
                    *(ulong*)(m + SampleLayout.ModuleEnd) = end;
                    int n = pathLength < SampleLayout.PathBytes - 1 ? pathLength : SampleLayout.PathBytes - 1;
                    *(uint*)(m + SampleLayout.ModulePathLength) = (uint)n;
                    Libc.memcpy(m + SampleLayout.ModulePath, path, (nuint)n);
                    MirrorEntry(offset, SampleLayout.ModuleEntryBytes);
                    (*used)++;
                }
                MirrorHeader();
            }
            Unlock();
        }

        // ---- the peak ----

        private static void MaybeTakePeak()
        {
            ulong inUse = StatsWriter.ProcessInUse;
            if (inUse <= s_peakBytes) return;
            long now = Clock.CoarseMilliseconds();
            // At most once per interval, or sooner after growth by an eighth (so a fast climb
            // is never more than an eighth behind; the copies then grow geometrically).
            if (now - s_peakMs >= PeakIntervalMs || inUse - s_peakBytes >= s_peakBytes / 8) TakePeak(inUse, now);
            else if (inUse > s_peakPending) s_peakPending = inUse;
        }

        private static void TakePeak(ulong inUse, long now)
        {
            s_peakBytes = inUse;
            s_peakPending = 0;
            s_peakMs = now;
            byte* h = s_private;
            uint used = *(uint*)(h + SampleLayout.OffSamplesHighWater);
            nuint bytes = (nuint)used * SampleLayout.SampleEntryBytes;
            Libc.memcpy(h + SampleLayout.PeakOffset, h + SampleLayout.SamplesOffset, bytes);
            *(uint*)(h + SampleLayout.OffPeakHighWater) = used;
            *(ulong*)(h + SampleLayout.OffPeakBytes) = inUse;
            *(ulong*)(h + SampleLayout.OffPeakTimeNs) = Clock.RealtimeNanoseconds();
            if (!Backed(0, SampleLayout.HeaderBytes) || !Backed(SampleLayout.PeakOffset, SampleLayout.PeakOffset + (long)bytes)) return;
            ulong* seq = (ulong*)(s_shared + SampleLayout.OffPeakSeq);
            ulong v = *(ulong*)(h + SampleLayout.OffPeakSeq);
            Atomics.Write(seq, v + 1);
            Libc.memcpy(s_shared + SampleLayout.PeakOffset, h + SampleLayout.PeakOffset, bytes);
            MirrorHeader();
            Atomics.Write(seq, v + 2);
            *(ulong*)(h + SampleLayout.OffPeakSeq) = v + 2;
        }

        // ---- the address index ----

        private static uint Home(ulong address) => (uint)(((address >> 4) * 0x9E3779B97F4A7C15) >> (64 - s_addressBits));

        private static void IndexInsert(ulong address, uint slot)
        {
            if (2 * (s_addressCount + 1) > AddressCapacity && s_addressBits < MaxAddressBits) GrowIndex();
            s_addressCount++;
            Place(address, slot);
        }

        /// <summary>Twice the entries; every key placed again. Under the lock; if the new arrays
        /// cannot be mapped, the index stays as it is (at most half full until then, and never
        /// fuller than SampleCapacity of 2 x SampleCapacity at the largest size).</summary>
        private static void GrowIndex()
        {
            uint oldCapacity = AddressCapacity;
            ulong* oldKeys = s_addressKeys;
            uint* oldSlots = s_addressSlots;
            ulong* keys = (ulong*)MapPrivate((nuint)oldCapacity * 2 * 8);
            uint* slots = (uint*)MapPrivate((nuint)oldCapacity * 2 * 4);
            if (keys == null || slots == null)
            {
                if (keys != null) UnmapPrivate(keys, (nuint)oldCapacity * 2 * 8);
                if (slots != null) UnmapPrivate(slots, (nuint)oldCapacity * 2 * 4);
                return;
            }
            s_addressKeys = keys;
            s_addressSlots = slots;
            s_addressBits++;
            for (uint i = 0; i < oldCapacity; i++)
                if (oldKeys[i] != 0) Place(oldKeys[i], oldSlots[i]);
            UnmapPrivate(oldKeys, (nuint)oldCapacity * 8);
            UnmapPrivate(oldSlots, (nuint)oldCapacity * 4);
        }

        private static void Place(ulong address, uint slot)
        {
            uint i = Home(address);
            while (s_addressKeys[i] != 0) i = (i + 1) & (AddressCapacity - 1);
            s_addressKeys[i] = address;
            s_addressSlots[i] = slot;
        }

        private static uint IndexRemove(ulong address)
        {
            uint i = Home(address);
            for (uint probes = 0; probes < AddressCapacity; probes++, i = (i + 1) & (AddressCapacity - 1))
            {
                ulong key = s_addressKeys[i];
                if (key == 0) return NoSlot;
                if (key != address) continue;
                uint slot = s_addressSlots[i];
                // Backward shift: move later entries of the run into the hole when their home
                // position allows, so lookups never need tombstones.
                uint hole = i;
                uint j = (i + 1) & (AddressCapacity - 1);
                while (s_addressKeys[j] != 0)
                {
                    uint home = Home(s_addressKeys[j]);
                    bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
                    if (movable)
                    {
                        s_addressKeys[hole] = s_addressKeys[j];
                        s_addressSlots[hole] = s_addressSlots[j];
                        hole = j;
                    }
                    j = (j + 1) & (AddressCapacity - 1);
                }
                s_addressKeys[hole] = 0;
                s_addressCount--;
                return slot;
            }
            return NoSlot;
        }

        // ---- mirroring into the segment ----

        /// <summary>Copies an entry into the published copy between its sequence words.</summary>
        private static void MirrorEntry(long offset, int bytes)
        {
            if (!Backed(offset, offset + bytes)) return;
            // The version comes from the private copy: reading the file's page would fault it
            // (and its neighbours) in for nothing.
            byte* src = s_private + offset;
            byte* dst = s_shared + offset;
            ulong v = *(ulong*)src;
            Atomics.Write((ulong*)dst, v + 1);
            Libc.memcpy(dst + 8, src + 8, (nuint)(bytes - 16));
            Atomics.Write((ulong*)(dst + bytes - 8), v + 2);
            Atomics.Write((ulong*)dst, v + 2);
            *(ulong*)src = v + 2;
            *(ulong*)(src + bytes - 8) = v + 2;
        }

        private static void MirrorHeader()
        {
            if (!Backed(0, SampleLayout.HeaderBytes)) return;
            // Everything but the magic (already there) and the peak's sequence word.
            Libc.memcpy(s_shared + 8, s_private + 8, SampleLayout.OffPeakSeq - 8);
            Libc.memcpy(s_shared + SampleLayout.OffPeakSeq + 8, s_private + SampleLayout.OffPeakSeq + 8,
                        (nuint)(SampleLayout.HeaderBytes - SampleLayout.OffPeakSeq - 8));
        }

        /// <summary>The used part of every table into a fresh published copy, magic last.</summary>
        private static void CopyAll()
        {
            byte* h = s_private;
            if (!Backed(0, SampleLayout.HeaderBytes)) return;
            Copy(SampleLayout.SamplesOffset, (long)*(uint*)(h + SampleLayout.OffSamplesHighWater) * SampleLayout.SampleEntryBytes);
            Copy(SampleLayout.StacksOffset, (long)*(uint*)(h + SampleLayout.OffStacksUsed) * SampleLayout.StackEntryBytes);
            Copy(SampleLayout.ModulesOffset, (long)*(uint*)(h + SampleLayout.OffModulesUsed) * SampleLayout.ModuleEntryBytes);
            Copy(SampleLayout.PeakOffset, (long)*(uint*)(h + SampleLayout.OffPeakHighWater) * SampleLayout.SampleEntryBytes);
            if (s_shared == null) return;
            Copy(8, SampleLayout.HeaderBytes - 8);
            Atomics.Write((ulong*)s_shared, SampleLayout.Magic);
        }

        private static void Copy(long offset, long bytes)
        {
            if (bytes > 0 && Backed(offset, offset + bytes)) Libc.memcpy(s_shared + offset, s_private + offset, (nuint)bytes);
        }
    }
}
