// mallopt(M_MMAP_THRESHOLD, n) for large blocks: as in glibc, setting the
// threshold fixes it, so it no longer rises when large blocks are freed.

namespace Konfiscator.Native.Heaps
{
    internal static unsafe partial class LargeBlocks
    {
        private static bool s_thresholdFixed;

        /// <summary>From now on requests of <paramref name="bytes"/> or more (at most
        /// MaxThreshold) get a mapping of their own, whatever is freed later.</summary>
        public static void FixThreshold(nuint bytes)
        {
            s_threshold = bytes;
            s_thresholdFixed = true;
        }
    }
}
