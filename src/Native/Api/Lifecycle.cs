// The library's initializer and finalizer, set as the object's DT_INIT and
// DT_FINI by the linker (-init/-fini in the csproj): the dynamic linker calls the
// first when it loads the library (for a preload: before the program's own
// constructors, with no loader lock held) and the second at exit, after the
// program's atexit handlers and destructors.

using System.Runtime;
using Konfiscator.Native.Heaps;
using Konfiscator.Native.Sampling;

namespace Konfiscator.Native.Api
{
    internal static unsafe class Lifecycle
    {
        /// <summary>Starts the heap and warms up the unwinder for sampling: the one place
        /// where its first use (which allocates and takes the loader's locks) is safe.</summary>
        [RuntimeExport("konfiscator_init")]
        public static void Initialize()
        {
            int saved = *Platform.Libc.__errno_location();
            Heap.EnsureStarted();
            Platform.FutexLock.FindSingleThreadFlag();
            Heap.AdoptSoleCache();
            Sampler.StartUnwinder();
            *Platform.Libc.__errno_location() = saved;
        }

        /// <summary>At exit: the leak report, when KONFISCATOR_LEAKS asks for one.</summary>
        [RuntimeExport("konfiscator_fini")]
        public static void Finish() => Sampler.AtExit();
    }
}
