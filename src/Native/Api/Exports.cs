using System.Runtime;
namespace Konfiscator.Native.Api
{
    internal static unsafe class Exports
    {
        [RuntimeExport("malloc")]
        public static void* Malloc(nuint size) { return null; }
        [RuntimeExport("free")]
        public static void Free(void* p) { if (p == (void*)1) Konfiscator.Native.Platform.Fatal.Misuse("free", "double free", p); }
    }
}
