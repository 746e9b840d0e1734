// Call stacks of sampled allocations, from libgcc's unwinder.
//
// Distribution binaries are built without frame pointers, so walking %rbp would
// stop after a frame or two; the DWARF unwinder that C++ exceptions use
// (_Unwind_Backtrace, in libgcc_s) reads the .eh_frame tables every object
// carries. It is found with dlsym (in libc since glibc 2.34), loading libgcc_s
// if no object of the program has yet. Its first use allocates and takes the
// loader's locks (it caches the objects' unwind tables), so it is warmed up once
// in the library's initializer, where nothing can recurse into a sample.
// Frames are bounded (SampleLayout.MaxFrames) and so is the time per sample.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class Unwinder
    {
        private const int URC_NO_REASON = 0, URC_END_OF_STACK = 5;

        private static delegate* unmanaged<delegate* unmanaged<void*, void*, int>, void*, int> s_backtrace;
        private static delegate* unmanaged<void*, nuint> s_getIp;
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

        /// <summary>Finds and warms up the unwinder; false when there is none.</summary>
        public static bool Initialize()
        {
            s_backtrace = (delegate* unmanaged<delegate* unmanaged<void*, void*, int>, void*, int>)DynamicLinker.Symbol(DynamicLinker.RTLD_DEFAULT, "_Unwind_Backtrace");
            s_getIp = (delegate* unmanaged<void*, nuint>)DynamicLinker.Symbol(DynamicLinker.RTLD_DEFAULT, "_Unwind_GetIP");
            if (s_backtrace == null || s_getIp == null)
            {
                void* gcc = DynamicLinker.Open("libgcc_s.so.1");
                if (gcc == null) return false;
                s_backtrace = (delegate* unmanaged<delegate* unmanaged<void*, void*, int>, void*, int>)DynamicLinker.Symbol(gcc, "_Unwind_Backtrace");
                s_getIp = (delegate* unmanaged<void*, nuint>)DynamicLinker.Symbol(gcc, "_Unwind_GetIP");
                if (s_backtrace == null || s_getIp == null) return false;
            }
            FindSelf();
            // Warm up: the first walk registers the unwind tables, allocating as it goes.
            ulong* frames = WarmBuffer();
            var trace = new Trace { Frames = frames, Depth = 0, Capacity = SampleLayout.MaxFrames };
            s_backtrace(&Step, &trace);
            return true;
        }

        // A static buffer for the warm-up walk (no stackalloc in this library: it would
        // need the runtime's stack cookie).
        private struct WarmFrames { public fixed ulong Frames[SampleLayout.MaxFrames]; }
#pragma warning disable CS0169
        private static WarmFrames s_warm;
#pragma warning restore CS0169
        private static ulong* WarmBuffer() { fixed (ulong* f = s_warm.Frames) return f; }

        /// <summary>Walks the calling thread's stack into <paramref name="trace"/>, skipping this library's frames.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Walk(Trace* trace)
        {
            trace->Depth = 0;
            s_backtrace(&Step, trace);
        }

        [UnmanagedCallersOnly]
        private static int Step(void* context, void* argument)
        {
            Trace* trace = (Trace*)argument;
            nuint ip = s_getIp(context);
            if (ip == 0) return URC_END_OF_STACK;
            if (trace->Depth == 0 && ip - s_selfStart < s_selfLength) return URC_NO_REASON;
            trace->Frames[trace->Depth++] = ip;
            return trace->Depth >= trace->Capacity ? URC_END_OF_STACK : URC_NO_REASON;
        }

        // ---- which addresses are this library's own ----

        private static void FindSelf()
        {
            nuint here = (nuint)(delegate* unmanaged<void*, void*, int>)&Step;
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
