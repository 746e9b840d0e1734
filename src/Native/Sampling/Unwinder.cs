// Call stacks of sampled allocations, walked by the call frame information every
// object carries (CallFrames.cs).
//
// Distribution binaries are built without frame pointers, so walking %rbp would
// stop after a frame or two; the tables that C++ exceptions use (.eh_frame) say for
// every code address where the caller's frame is and where its registers were
// saved. The walk starts from the registers _setjmp (StartRegisters.cs), or where
// that cannot be read, getcontext saves in Walk itself, and
// from each frame computes the caller's: its stack pointer (the CFA), its return
// address and its callee-saved registers, until a frame says its return address
// is undefined (a thread's first function), an address has no entry, or the
// frames run out (SampleLayout.MaxFrames).
//
// Reading someone else's stack must never fault: each frame's CFA must lie above
// the one before (stacks grow down) and within MaxStackBytes of where the walk
// began, and a saved register is read only between the frame's stack pointer and
// its CFA, the frame's own part of the stack. The tables are trusted as libgcc's
// unwinder trusts them. The walk allocates nothing and takes no lock of the
// dynamic linker on glibc 2.35 and later; one walk at a time (its state is static,
// this library has no stack buffers).

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class Unwinder
    {
        /// <summary>How far above its start a walk may read (the main thread's stack may grow
        /// to the stack limit, 8 MiB by default; a thread's is what it was created with).</summary>
        private const ulong MaxStackBytes = 256UL << 20;

        // This library's own code: its frames are skipped, the stack starts at its caller.
        private static nuint s_selfStart, s_selfLength;

        /// <summary>Per call: where frames go and how many there are.</summary>
        [StructLayout(LayoutKind.Sequential)]
        public struct Trace
        {
            public ulong* Frames;
            public int Depth;
            public int Capacity;
        }

        // ucontext_t as glibc lays it out on x86-64 (968 bytes): the general registers
        // (mcontext_t's gregs) start at byte 40, in the order of <sys/ucontext.h>.
        private const int ContextBytes = 968, GeneralRegistersAt = 40;
        private const int GregR8 = 0, GregRdi = 8, GregRsi = 9, GregRbp = 10, GregRbx = 11, GregRdx = 12,
                          GregRax = 13, GregRcx = 14, GregRsp = 15, GregRip = 16;
        private struct ContextBuffer { public fixed byte Bytes[ContextBytes + 64]; }
        [DllImport("libc")] private static extern int getcontext(void* context);

        /// <summary>One walk at a time: the state below is the walk's.</summary>
        private static int s_lock;
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static ContextBuffer s_context;
#pragma warning restore CS0169, CS0649
        private struct RegisterFile
        {
            public fixed ulong Value[CallFrames.RegisterCount];
            public fixed byte Known[CallFrames.RegisterCount];
        }
        private static RegisterFile s_registers, s_caller;
        private static CallFrames.Row s_row;

        /// <summary>Finds the object lookup and this library's own code; a first walk checks
        /// that the walk works here (false: no samples).</summary>
        public static bool Initialize()
        {
            CallFrames.Initialize();
            FindSelf();
            if (s_selfLength == 0) return false;
            StartRegisters.Initialize(s_selfStart, s_selfLength);
            fixed (ulong* frames = s_warm.Frames)
            {
                // This walk runs through the dynamic linker's frames, whose tables its own
                // start-up made resident: read there, it costs no system calls at the start
                // of every process (through the file: about 80 microseconds, perf).
                var trace = new Trace { Frames = frames, Depth = 0, Capacity = SampleLayout.MaxFrames };
                bool works = Walk(&trace) >= 0;
                ObjectFiles.ReadFiles = true;
                return works;
            }
        }

        // A static buffer for the first walk (no stackalloc in this library: it would
        // need the runtime's stack cookie).
        private struct WarmFrames { public fixed ulong Frames[SampleLayout.MaxFrames]; }
#pragma warning disable CS0169
        private static WarmFrames s_warm;
#pragma warning restore CS0169

        /// <summary>Walks the calling thread's stack into <paramref name="trace"/>, skipping
        /// this library's frames. The number of frames walked through, this library's
        /// included, or -1 when the walk could not start.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static int Walk(Trace* trace)
        {
            trace->Depth = 0;
            fixed (int* l = &s_lock) FutexLock.Acquire(l);
            int walked = -1;
            fixed (byte* context = s_context.Bytes)
            fixed (RegisterFile* registers = &s_registers)
            fixed (RegisterFile* caller = &s_caller)
            fixed (CallFrames.Row* row = &s_row)
            {
                // 64-byte aligned for the floating-point state getcontext saves too.
                byte* aligned = (byte*)(((nuint)context + 63) & ~(nuint)63);
                // The walk may open an object's file (ObjectFiles.cs): a failed open must not
                // change the errno the program sees after its malloc.
                int savedErrno = Libc.Errno;
                // The registers as they are here, after _setjmp or getcontext returned: the
                // return address saved is a place in this function, the stack pointer ours.
                // _setjmp makes no system call (StartRegisters.cs says why that matters).
                bool saved;
                if (StartRegisters.UseSetJmp)
                {
                    ulong* jb = StartRegisters.Buffer;
                    saved = StartRegisters.SetJmp(jb) == 0;
                    if (saved) StartRegisters.Load(jb, registers->Value, registers->Known);
                }
                else
                {
                    saved = getcontext(aligned) == 0;
                    if (saved) LoadContext(registers, (ulong*)(aligned + GeneralRegistersAt));
                }
                if (saved) walked = WalkFrom(registers, caller, row, trace);
                CallFrames.EndWalk();
                Libc.SetErrno(savedErrno);
            }
            fixed (int* l = &s_lock) FutexLock.Release(l);
            return walked;
        }

        private static void LoadContext(RegisterFile* r, ulong* gregs)
        {
            // DWARF's numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then the return address.
            r->Value[0] = gregs[GregRax];
            r->Value[1] = gregs[GregRdx];
            r->Value[2] = gregs[GregRcx];
            r->Value[3] = gregs[GregRbx];
            r->Value[4] = gregs[GregRsi];
            r->Value[5] = gregs[GregRdi];
            r->Value[6] = gregs[GregRbp];
            r->Value[7] = gregs[GregRsp];
            for (int i = 0; i < 8; i++) r->Value[8 + i] = gregs[GregR8 + i];
            r->Value[CallFrames.ReturnAddress] = gregs[GregRip];
            for (int i = 0; i < CallFrames.RegisterCount; i++) r->Known[i] = 1;
        }

        /// <summary>The walk proper: frame after frame from the registers in
        /// <paramref name="r"/>, recording each return address outside this library.</summary>
        private static int WalkFrom(RegisterFile* r, RegisterFile* next, CallFrames.Row* row, Trace* trace)
        {
            ulong start = r->Value[CallFrames.Rsp];
            int walked = 0;
            for (int step = 0; step < SampleLayout.MaxFrames + 32; step++)
            {
                ulong pc = r->Value[CallFrames.ReturnAddress];
                if (r->Known[CallFrames.ReturnAddress] == 0 || pc == 0) break;
                walked++;
                if (trace->Depth > 0 || pc - s_selfStart >= s_selfLength)
                {
                    trace->Frames[trace->Depth++] = pc;
                    if (trace->Depth >= trace->Capacity) break;
                }
                // A return address is the instruction after a call, which may be the first of
                // the next function (a call that does not return): look up the call's address.
                if (!CallFrames.FindRow(pc - 1, row)) break;
                if (!Caller(r, next, row, start)) break;
                // The caller's registers are the next frame's: the two files change places.
                RegisterFile* callee = r;
                r = next;
                next = callee;
            }
            return walked;
        }

        /// <summary>The caller's registers into <paramref name="next"/> by the rules of
        /// <paramref name="row"/>; false when they cannot be told (the walk ends).</summary>
        private static bool Caller(RegisterFile* r, RegisterFile* next, CallFrames.Row* row, ulong start)
        {
            int cfaRegister = row->CfaRegister;
            if (row->CfaIsExpression || cfaRegister < 0 || cfaRegister >= CallFrames.RegisterCount || r->Known[cfaRegister] == 0)
                return false;
            ulong sp = r->Value[CallFrames.Rsp];
            ulong cfa = r->Value[cfaRegister] + (ulong)row->CfaOffset;
            // The caller's frame lies above this one, and not beyond where any stack reaches.
            if (cfa <= sp || cfa - start > MaxStackBytes) return false;
            for (int i = 0; i < CallFrames.RegisterCount; i++)
            {
                byte rule = row->Rule[i];
                long offset = row->Offset[i];
                ulong value = r->Value[i];
                byte known = r->Known[i];
                switch (rule)
                {
                    case CallFrames.SameValue: break;
                    case CallFrames.SavedAtCfa:
                    {
                        ulong at = cfa + (ulong)offset;
                        // Only this frame's own stack, [sp, cfa), is read.
                        if (at < sp || at > cfa - 8) return false;
                        value = *(ulong*)at;
                        known = 1;
                        break;
                    }
                    case CallFrames.CfaPlus: value = cfa + (ulong)offset; known = 1; break;
                    case CallFrames.InRegister: value = r->Value[offset]; known = r->Known[offset]; break;
                    default: value = 0; known = 0; break;        // undefined, or an expression
                }
                next->Value[i] = value;
                next->Known[i] = known;
            }
            // The caller's stack pointer is the CFA (by definition, on x86-64).
            next->Value[CallFrames.Rsp] = cfa;
            next->Known[CallFrames.Rsp] = 1;
            return true;
        }

        // ---- which addresses are this library's own ----

        private static void FindSelf()
        {
            nuint here = (nuint)(delegate* unmanaged<DlPhdrInfo*, nuint, void*, int>)&FindSelfIn;
            DynamicLinker.dl_iterate_phdr(&FindSelfIn, &here);
        }

        [UnmanagedCallersOnly]
        private static int FindSelfIn(DlPhdrInfo* info, nuint size, void* data)
        {
            nuint here = *(nuint*)data;
            ulong low = 0xFFFFFFFFFFFFFFFF, high = 0;
            for (int i = 0; i < info->HeaderCount; i++)
            {
                ElfProgramHeader* h = &info->Headers[i];
                if (h->Type != DynamicLinker.PT_LOAD) continue;
                ulong start = info->Address + h->VirtualAddress;
                if (start < low) low = start;
                if (start + h->MemorySize > high) high = start + h->MemorySize;
            }
            if (low <= here && here < high)
            {
                s_selfStart = (nuint)low;
                s_selfLength = (nuint)(high - low);
                return 1;
            }
            return 0;
        }
    }
}
