// The dynamic linker's API, which lives in libc since glibc 2.34 (so the library
// still needs libc alone). Used only by the sampler: to find the unwinder, to
// record which objects are mapped where, and to print module+offset in leak
// reports. None of these is called with the sample lock held.

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
        public const int RTLD_NOW = 2;
        public const uint PT_LOAD = 1;
        public static readonly void* RTLD_DEFAULT = null;

        [DllImport("libc")] public static extern void* dlsym(void* handle, byte* name);
        [DllImport("libc")] public static extern void* dlopen(byte* file, int mode);
        [DllImport("libc")] public static extern int dl_iterate_phdr(delegate* unmanaged<DlPhdrInfo*, nuint, void*, int> callback, void* data);
        [DllImport("libc")] public static extern nint readlink(byte* path, byte* buffer, nuint size);
    }
}
