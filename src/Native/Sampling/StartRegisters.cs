// Where a stack walk starts: the registers of the walking function's own frame.
//
// A walk needs the callee-saved registers (rbx, rbp, r12-r15), the stack pointer
// and an address in the code: every caller's frame is computed from those. glibc's
// getcontext saves them, and the signal mask too, with a system call
// (rt_sigprocmask) on every sampled allocation. On this project's machine, a
// virtual machine whose kernel runs in an address space of its own, each system
// call also costs the program its TLB: the fragmentation mix ran 15% slower with
// sampling on, mostly in the program's own loops (perf), and 1% with no system
// call in the walk (docs/profiling.md, "What a sample costs").
//
// _setjmp saves exactly those registers, with no system call. glibc stores three
// of them mangled (PTR_MANGLE: rbp, rsp and the return address xored with the
// process's pointer guard, then rotated left by 17 bits), so that an overwritten
// jmp_buf cannot steer a longjmp; the guard is a word of the thread's control
// block, which pthread_self() points to, at offset 0x30 on x86-64. That is glibc's
// own layout, not its interface, so Initialize checks it once on a jmp_buf whose
// true values it knows (the stack pointer next to a local's address, the return
// address inside this library, the frame pointer between them and a page above);
// where it does not hold, every walk takes getcontext's registers as before.
// Nothing here ever calls longjmp.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class StartRegisters
    {
        // glibc's x86-64 __jmp_buf: eight words, in this order (sysdeps/x86_64/jmpbuf-offsets.h).
        private const int JbRbx = 0, JbRbp = 1, JbR12 = 2, JbR13 = 3, JbR14 = 4, JbR15 = 5, JbRsp = 6, JbPc = 7;
        /// <summary>sizeof(jmp_buf): the registers, a flag and a signal mask _setjmp leaves unsaved.</summary>
        private const int JmpBufBytes = 200;
        /// <summary>Offset of the pointer guard in glibc's x86-64 tcbhead_t.</summary>
        private const int PointerGuardAt = 0x30;

        private struct JmpBuf { public fixed byte Bytes[JmpBufBytes + 56]; }

        // One walk at a time (Unwinder's lock), so one buffer.
#pragma warning disable CS0169, CS0649 // only ever used through `fixed`
        private static JmpBuf s_buffer;
#pragma warning restore CS0169, CS0649
        private static bool s_useSetJmp;

        /// <summary>True once Initialize found _setjmp's mangling as expected.</summary>
        public static bool UseSetJmp => s_useSetJmp;

        /// <summary>Checks the mangling on a jmp_buf saved here, in this library's code
        /// [<paramref name="selfStart"/>, +<paramref name="selfLength"/>).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Initialize(nuint selfStart, nuint selfLength)
        {
            ulong local = 0;
            ulong here = (ulong)&local;
            fixed (byte* buffer = s_buffer.Bytes)
            {
                ulong* jb = (ulong*)buffer;
                if (SetJmp(jb) != 0) return;   // never: nothing here calls longjmp
                ulong guard = Guard();
                ulong sp = Demangle(jb[JbRsp], guard), pc = Demangle(jb[JbPc], guard), bp = Demangle(jb[JbRbp], guard);
                // The stack pointer after _setjmp returned is this frame's: a local lies just
                // above it, as does the frame pointer (this method keeps an RBP frame).
                s_useSetJmp = here >= sp && here - sp < 4096
                              && bp >= sp && bp - sp < 4096
                              && pc - selfStart < selfLength;
            }
        }

        /// <summary>The jmp_buf a walk saves its registers into (one walk at a time: the
        /// Unwinder's lock). The walk calls SetJmp itself, so that the registers saved are
        /// those of its own frame, which stays live while it reads them, as with getcontext.</summary>
        public static ulong* Buffer
        {
            get { fixed (byte* buffer = s_buffer.Bytes) return (ulong*)buffer; }
        }

        /// <summary>_setjmp: 0 (it returns twice only after a longjmp, which nothing here makes).</summary>
        [DllImport("libc", EntryPoint = "_setjmp")] public static extern int SetJmp(ulong* buffer);

        /// <summary>The registers SetJmp saved in <paramref name="jb"/> into <paramref name="values"/>
        /// (DWARF numbering), <paramref name="known"/> set for each one saved: the
        /// callee-saved ones, the stack pointer and the return address (a place in the
        /// function that called SetJmp).</summary>
        public static void Load(ulong* jb, ulong* values, byte* known)
        {
            ulong guard = Guard();
            for (int i = 0; i < CallFrames.RegisterCount; i++) known[i] = 0;
            values[CallFrames.Rbx] = jb[JbRbx];
            values[CallFrames.Rbp] = Demangle(jb[JbRbp], guard);
            values[CallFrames.Rsp] = Demangle(jb[JbRsp], guard);
            values[CallFrames.R12] = jb[JbR12];
            values[CallFrames.R13] = jb[JbR13];
            values[CallFrames.R14] = jb[JbR14];
            values[CallFrames.R15] = jb[JbR15];
            values[CallFrames.ReturnAddress] = Demangle(jb[JbPc], guard);
            known[CallFrames.Rbx] = known[CallFrames.Rbp] = known[CallFrames.Rsp] = 1;
            known[CallFrames.R12] = known[CallFrames.R13] = known[CallFrames.R14] = known[CallFrames.R15] = 1;
            known[CallFrames.ReturnAddress] = 1;
        }

        private static ulong Guard() => *(ulong*)(Libc.pthread_self_fast() + PointerGuardAt);

        /// <summary>PTR_DEMANGLE: rotate right by 17 bits, then xor with the guard.</summary>
        private static ulong Demangle(ulong value, ulong guard) => ((value >> 17) | (value << 47)) ^ guard;
    }
}
