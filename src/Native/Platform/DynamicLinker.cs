// The dynamic linker's API, which lives in libc since glibc 2.34 (so the library
// still needs libc alone). Used by the initializer (glibc's single-thread flag),
// and by the sampler: to find each code address's unwind tables (_dl_find_object),
// to record which objects are mapped where, and to print module+offset in leak
// reports. None of these is called
// with the sample lock held.

using System.Runtime.InteropServices;

namespace Konfiscator.Native.Platform
{
    /// <summary>struct dl_phdr_info (the fields up to dlpi_subs).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct DlPhdrInfo
    {
        public ulong Address;     // load bias: run-time address = file address + this
        public byte* Name;        // "" for the main program
        public ElfProgramHeader* Headers;
        public ushort HeaderCount;
        public ushort Pad0;
        public uint Pad1;
        public ulong Adds;        // objects ever loaded (present when size >= 48)
        public ulong Subs;        // objects ever unloaded
    }

    /// <summary>Elf64_Phdr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ElfProgramHeader
    {
        public uint Type;
        public uint Flags;
        public ulong Offset;
        public ulong VirtualAddress;
        public ulong PhysicalAddress;
        public ulong FileSize;
        public ulong MemorySize;
        public ulong Alignment;
    }

    internal static unsafe class DynamicLinker
    {
        public const uint PT_LOAD = 1, PT_NOTE = 4, PT_GNU_EH_FRAME = 0x6474e550;
        public static readonly void* RTLD_DEFAULT = null;

        [DllImport("libc")] public static extern void* dlsym(void* handle, byte* name);

        /// <summary>dlsym by an ASCII name; null when the symbol is not there.</summary>
        public static void* Symbol(void* handle, string name)
        {
            fixed (byte* text = s_name.Bytes) return dlsym(handle, CString(text, name));
        }

        private static byte* CString(byte* buffer, string ascii)
        {
            var text = new TextBuffer(buffer, NameCapacity);
            text.Append(ascii);
            return buffer;
        }

        // One static buffer for the names above (no stackalloc in this library: it
        // would need the runtime's stack cookie). Only the library's initializer uses
        // them (the flag, the unwinder's object lookup), before any code of the program runs.
        private const int NameCapacity = 64;
        private struct NameBuffer { public fixed byte Bytes[NameCapacity]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static NameBuffer s_name;
#pragma warning restore CS0169
        [DllImport("libc")] public static extern int dl_iterate_phdr(delegate* unmanaged<DlPhdrInfo*, nuint, void*, int> callback, void* data);
        [DllImport("libc")] public static extern nint readlink(byte* path, byte* buffer, nuint size);
    }
}
