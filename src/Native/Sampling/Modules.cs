// Which objects are mapped where, recorded into the sample tables so the tool
// can turn a return address into module+offset (and a symbol) even after the
// process has exited and /proc/PID/maps is gone. dl_iterate_phdr reports every
// loaded object with its load bias; its adds/subs counters say whether anything
// was loaded or unloaded since the last look, so a sample costs one callback
// when nothing changed. Called outside the sample lock (the dynamic linker holds
// its own lock while it calls back; the sample lock is taken inside, as a leaf).

using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class Modules
    {
        private const int PathCapacity = 512;
        private const ulong Unknown = 0xFFFFFFFFFFFFFFFF;
        private static ulong s_adds = Unknown, s_subs = Unknown;
        private struct PathBuffer { public fixed byte Bytes[PathCapacity]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static PathBuffer s_exe;
        private struct LinkBuffer { public fixed byte Bytes[32]; }
        private static LinkBuffer s_link;
#pragma warning restore CS0169
        private static int s_exeLength = -1;

        /// <summary>Records newly loaded objects, if any.</summary>
        public static void Refresh()
        {
            int changed = 0;
            DynamicLinker.dl_iterate_phdr(&Changed, &changed);
            if (changed != 0) DynamicLinker.dl_iterate_phdr(&Record, null);
        }

        [UnmanagedCallersOnly]
        private static int Changed(DlPhdrInfo* info, nuint size, void* data)
        {
            if (size < 48 || info->Adds != s_adds || info->Subs != s_subs)
            {
                if (size >= 48)
                {
                    s_adds = info->Adds;
                    s_subs = info->Subs;
                }
                *(int*)data = 1;
            }
            return 1; // the first object carries the counters: stop there
        }

        [UnmanagedCallersOnly]
        private static int Record(DlPhdrInfo* info, nuint size, void* data)
        {
            ulong low = Unknown, high = 0;
            for (int i = 0; i < info->HeaderCount; i++)
            {
                ElfProgramHeader* h = &info->Headers[i];
                if (h->Type != DynamicLinker.PT_LOAD) continue;
                ulong start = info->Address + h->VirtualAddress;
                if (start < low) low = start;
                if (start + h->MemorySize > high) high = start + h->MemorySize;
            }
            if (high == 0) return 0;
            byte* name = info->Name;
            int length = 0;
            if (name != null) while (name[length] != 0) length++;
            if (length == 0)
            {
                // The main program has no name here: ask the kernel which file it is.
                if (s_exeLength < 0) s_exeLength = ReadExe();
                fixed (byte* exe = s_exe.Bytes)
                    SampleTables.AddModule(info->Address, low, high, exe, s_exeLength > 0 ? s_exeLength : 0);
                return 0;
            }
            SampleTables.AddModule(info->Address, low, high, name, length);
            return 0;
        }

        private static int ReadExe()
        {
            fixed (byte* exe = s_exe.Bytes)
            fixed (byte* link = s_link.Bytes)
            {
                var path = new TextBuffer(link, 32);
                path.Append("/proc/self/exe");
                nint n = DynamicLinker.readlink(link, exe, PathCapacity - 1);
                return n > 0 ? (int)n : 0;
            }
        }

        /// <summary>After exec nothing carries over; after fork the same objects are mapped.</summary>
        public static void Forget() => s_adds = s_subs = Unknown;
    }
}
