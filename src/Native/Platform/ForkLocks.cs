// The words a fork writes in the library's statics, kept in one class so that they
// lie on one page.
//
// The pthread_atfork handlers (Heap/Heap.cs) take the library's locks before fork and,
// after it, release them in the parent and reset them in the child. After a fork the two
// processes share every page until one of them writes to it, and that first write copies
// the page (a copy-on-write fault). Each of these locks used to be a static of the class it
// guards, and so lay on a page of its own among that class's statics: a fork then copied
// six pages in the parent that nothing else wrote, and most of them again in the child
// (26 µs a page on the virtual machine this was measured on: docs/performance/processes.md).
// Here they are one class's statics, which the compiler lays out together: one page.
//
// They are taken rarely (a thread's start and exit, a sample, a deferred unmap), so that
// they also share a cache line costs nothing that can be measured.

namespace Konfiscator.Native.Platform
{
    internal static class ForkLocks
    {
        /// <summary>Stats/StatsWriter.cs: the thread stats slots handed out and released.</summary>
        public static int StatsSlots;
        /// <summary>Stats/SampleTables.cs: the sample tables.</summary>
        public static int SampleTables;
        /// <summary>Heap/ThreadCache.Pool.cs: released caches and where new ones are carved.</summary>
        public static int CachePool;
        /// <summary>Platform/OsMemory.cs: unmaps deferred while a walk may read the pages.</summary>
        public static int DeferredUnmaps;
        /// <summary>Heap/ExitedThreads.cs: the threads whose caches are retired.</summary>
        public static int ExitedThreads;
        /// <summary>Sampling/Sampler.cs: non-zero while a fork is under way (no new walks start).</summary>
        public static int SamplerForking;
        /// <summary>Sampling/Sampler.cs: stack walks under way (a fork waits for them to end).</summary>
        public static int SamplerUnwinders;
    }
}
