// The binary layout of the allocation-sample tables: a region appended to a
// process's stats segment (see StatsLayout.cs for the segment itself).
//
// Like StatsLayout.cs, this file is compiled into both the writer (the library,
// against its minimal system module) and the reader (the tool): constants and
// plain arithmetic only.
//
// The segment header says where the region is, at bytes 128..159 (zero = no
// region, so segments of older writers stay readable):
//   128 u64 region offset from the start of the file
//   136 u64 region length in bytes
//   144 u32 SampleLayout.Version
//
// Region, offsets relative to its start:
//   0              RegionHeader (HeaderBytes): sizes, state, counters
//   SamplesOffset  SampleCapacity live-sample entries (a slot per live sampled block)
//   StacksOffset   StackCapacity interned stacks (never removed; cumulative counts)
//   ModulesOffset  ModuleCapacity mapped objects (path, load base, extent)
//   PeakOffset     SampleCapacity entries: the live samples as they were at the peak
//
// One writer at a time (the library's sample lock) and lock-free readers. Every
// entry starts and ends with a sequence word: the writer makes the first odd,
// writes the fields, then sets the last and the first to the same even value.
// A reader that copies an entry front to back keeps it only when both words are
// equal and even; anything else is torn (skipped, counted, read again next time).
// A live-sample entry with Address 0 is an empty slot.

namespace Konfiscator.Stats
{
    internal static class SampleLayout
    {
        /// <summary>"KNFSMPLS" read as a little-endian 64-bit integer.</summary>
        public const ulong Magic = 0x534C504D53464E4B;
        public const uint Version = 1;

        // ---- where the segment header points to the region ----
        public const int SegOffRegionOffset = 128;  // u64
        public const int SegOffRegionBytes = 136;   // u64
        public const int SegOffRegionVersion = 144; // u32

        // ---- sizes ----
        public const int MaxFrames = 64;
        public const int SampleCapacity = 65536;
        public const int StackCapacity = 4096;
        public const int ModuleCapacity = 512;
        public const int PathBytes = 208;

        public const int HeaderBytes = 512;
        public const int SampleEntryBytes = 48;
        public const int StackEntryBytes = 48 + MaxFrames * 8 + 8;   // 568
        public const int ModuleEntryBytes = 48 + PathBytes;          // 256: the sequence words, 4 fields, the path

        public const long SamplesOffset = HeaderBytes;
        public const long StacksOffset = SamplesOffset + (long)SampleCapacity * SampleEntryBytes;
        public const long ModulesOffset = StacksOffset + (long)StackCapacity * StackEntryBytes;
        public const long PeakOffset = ModulesOffset + (long)ModuleCapacity * ModuleEntryBytes;
        public const long RegionBytes = (PeakOffset + (long)SampleCapacity * SampleEntryBytes + 4095) / 4096 * 4096;

        /// <summary>The stack id of a sample whose stack could not be interned (table full).</summary>
        public const uint UnknownStack = 0xFFFFFFFF;

        // ---- region header fields (byte offsets) ----
        public const int OffMagic = 0;             // u64
        public const int OffVersion = 8;           // u32
        public const int OffHeaderBytes = 12;      // u32
        public const int OffSampleCapacity = 16;   // u32
        public const int OffSampleEntryBytes = 20; // u32
        public const int OffStackCapacity = 24;    // u32
        public const int OffStackEntryBytes = 28;  // u32
        public const int OffMaxFrames = 32;        // u32
        public const int OffModuleCapacity = 36;   // u32
        public const int OffModuleEntryBytes = 40; // u32
        public const int OffState = 44;            // u32  SamplingState
        public const int OffMeanBytes = 48;        // u64  mean of the exponential countdown
        public const int OffSamplesHighWater = 56; // u32  slots at or above are empty (never used)
        public const int OffStacksUsed = 60;       // u32
        public const int OffModulesUsed = 64;      // u32
        public const int OffPeakHighWater = 68;    // u32  entries of the peak table
        public const int OffPeakBytes = 72;        // u64  process bytes in use when the peak table was taken
        public const int OffPeakTimeNs = 80;       // u64  CLOCK_REALTIME when it was taken
        public const int OffPeakSeq = 88;          // u64  odd while the peak table is being copied
        public const int OffCounters = 128;        // u64 counters, indexed by the Counter* constants

        // Counters (u64 at OffCounters + 8*i). Written only under the sample lock.
        public const int CounterSamples = 0;          // samples taken
        public const int CounterSampledBytes = 1;     // requested bytes of the sampled blocks, summed
        public const int CounterLiveSamples = 2;      // samples whose block is still live
        public const int CounterTableFull = 3;        // samples dropped: no free slot
        public const int CounterStackTableFull = 4;   // samples kept with an unknown stack: no stack slot
        public const int CounterNoFrames = 5;         // samples dropped: the unwinder found no frame outside the library
        public const int CounterReentrant = 6;        // countdowns that ran out inside the sampler (served, not sampled)
        public const int CounterForking = 7;          // samples skipped while a fork was under way
        public const int CounterStaleFrees = 8;       // sampled blocks freed where the table could not be updated (signal handler during sampling)
        public const int CounterModuleTableFull = 9;  // mapped objects not recorded: no module slot
        public const int CounterUnknownFrees = 10;    // blocks flagged as sampled but not in the table
        public const int CounterCount = 11;

        // ---- sampling states ----
        public const uint StateNotStarted = 0;
        public const uint StateOn = 1;
        public const uint StateOffBySetting = 2;   // KONFISCATOR_SAMPLE_BYTES=0
        public const uint StateNoUnwinder = 3;     // _Unwind_Backtrace not found
        public const uint StateNoInit = 4;         // the library's initializer never ran (unwinder not warmed)
        public const uint StateUnpublished = 5;    // sampling goes on, but the file had no space for more: these tables are stale

        // ---- live-sample entry (SampleEntryBytes) ----
        public const int SampleSeqBegin = 0;   // u64
        public const int SampleAddress = 8;    // u64 the block's payload address; 0 = empty slot
        public const int SampleSize = 16;      // u64 requested bytes
        public const int SampleTimeNs = 24;    // u64 CLOCK_REALTIME at allocation
        public const int SampleStack = 32;     // u32 stack id (index into the stack table) or UnknownStack
        public const int SampleThread = 36;    // u32 thread id that allocated
        public const int SampleSeqEnd = 40;    // u64

        // ---- stack entry (StackEntryBytes) ----
        public const int StackSeqBegin = 0;    // u64
        public const int StackHash = 8;        // u64
        public const int StackDepth = 16;      // u32 frames used (1..MaxFrames)
        public const int StackAllocSamples = 24;   // u64 samples ever taken with this stack
        public const int StackAllocBytes = 32;     // u64 estimated bytes ever allocated here (weighted, see docs/profiling.md)
        public const int StackAllocObjects = 40;   // u64 estimated allocations ever made here, in 1/1024 units
        public const int StackFrames = 48;     // u64[MaxFrames] return addresses, innermost first
        public const int StackSeqEnd = 48 + MaxFrames * 8;

        // ---- module entry (ModuleEntryBytes) ----
        public const int ModuleSeqBegin = 0;   // u64
        public const int ModuleBase = 8;       // u64 load bias (dl_iterate_phdr's dlpi_addr): file address = address - base
        public const int ModuleStart = 16;     // u64 lowest mapped address of its PT_LOAD segments
        public const int ModuleEnd = 24;       // u64 highest, exclusive
        public const int ModulePathLength = 32; // u32
        public const int ModulePath = 40;      // PathBytes, NUL-padded
        public const int ModuleSeqEnd = ModulePath + PathBytes; // u64, the entry's last word

        public const int ObjectsFixedPoint = 1024;
    }
}
