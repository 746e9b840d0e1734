using System.Globalization;
using System.Text;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Output;

namespace Konfiscator.Tool.Views;

/// <summary>One frame of <c>konfiscator top</c>, as plain lines that fit 80 columns: rates per
/// second between two readings (or since start for the first), levels now, fragmentation, what the
/// thread caches hold (from the heap map), and the request sizes of the interval.</summary>
internal static class TopFrame
{
    public const int MaxHistogramLines = 10;

    // Thread-cache figures of each slot: zero in segments of libraries that predate them.
    private const int CachedBytesCounter = StatsLayout.CachedBytes;
    private const int CacheRefillCounter = StatsLayout.CacheRefillBlocks;
    private const int CacheReturnCounter = StatsLayout.CacheReturnBlocks;

    /// <param name="before">the previous reading of the same process, or null (then: since start)</param>
    public static string Render(Publisher p, ProcessStats now, ProcessStats? before, double seconds, HeapMap? map, double interval, bool live,
        string? sites = null)
    {
        double? age = Rates.AgeSeconds(now);
        double span = before is null ? age ?? 0 : seconds;
        ulong Delta(int c) => before is null ? now[c] : now[c] >= before[c] ? now[c] - before[c] : 0;
        string PerSecond(int c) => Rates.Rate(span > 0 ? Delta(c) / span : 0) + "/s";
        string BytesPerSecond(int c) => Format.BytesShort((ulong)(span > 0 ? Delta(c) / span : 0)) + "/s";

        ulong calls = before is null ? Rates.Calls(now) : Rates.Calls(now) - Math.Min(Rates.Calls(now), Rates.Calls(before));
        var text = new StringBuilder();
        string state = live ? $"running {Rates.Age(age)}" : "ended";
        text.AppendLine(Clip($"konfiscator top · pid {now.Pid} ({now.Command}) · {state} · every {interval.ToString("0.#", CultureInfo.InvariantCulture)} s · q quits"));
        text.AppendLine(before is null ? "rates since the process started" : $"rates over the last {seconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        text.AppendLine();
        text.AppendLine($"  calls       {Rates.Rate(span > 0 ? calls / span : 0) + "/s",-10}  malloc {PerSecond(StatsLayout.MallocCalls),-9} free {PerSecond(StatsLayout.FreeCalls),-9} realloc {PerSecond(StatsLayout.ReallocCalls)}");
        text.AppendLine($"  bytes       allocated {BytesPerSecond(StatsLayout.BytesAllocated),-14} freed {BytesPerSecond(StatsLayout.BytesFreed)}");
        text.AppendLine($"  in use      {Format.BytesShort(now[StatsLayout.BytesInUse]),-10}  peak {Format.BytesShort(now[StatsLayout.PeakBytesInUse]),-10}  mapped {Format.BytesShort(now[StatsLayout.BytesMapped])}");
        ulong free = now[StatsLayout.FreeBytes], largest = now[StatsLayout.LargestFreeBlock];
        text.AppendLine($"  free        {Format.BytesShort(free),-10}  in {Format.Count(now[StatsLayout.FreeBlocks])} blocks, largest {Format.BytesShort(largest)}");
        string fragmentation = free == 0 ? "0%" : $"{100.0 * (free - Math.Min(free, largest)) / free:0}%";
        text.AppendLine($"  fragmented  {fragmentation,-10}  of the free bytes lie outside the largest free block");
        // The thread caches: the library's own figure when it publishes one (counters 26..28 of the
        // speed work), else what the heap map saw at its last rebuild.
        long cached = (long)now[CachedBytesCounter];
        if (cached > 0 || now[CacheRefillCounter] > 0)
            text.AppendLine($"  caches      {Format.BytesShort((ulong)Math.Max(0, cached)),-10}  held; refills {PerSecond(CacheRefillCounter)}, returns {PerSecond(CacheReturnCounter)} (blocks)");
        else
            text.AppendLine(map is null
                ? "  caches      (no heap map published)"
                : $"  caches      {Format.BytesShort(map.CachedBytes),-10}  held in thread caches (heap map)");
        text.AppendLine($"  mmap        {PerSecond(StatsLayout.MmapCalls),-10}  munmap {PerSecond(StatsLayout.MunmapCalls),-9} failed {PerSecond(StatsLayout.FailedAllocations)}");
        text.AppendLine();

        var buckets = new ulong[StatsLayout.HistogramBuckets];
        for (int i = 0; i < buckets.Length; i++) buckets[i] = Delta(StatsLayout.HistogramFirst + i);
        ulong total = Figures.HistogramTotal(buckets);
        text.AppendLine($"request sizes {(before is null ? "since start" : "in the interval")} ({Format.Count(total)} requests)");
        if (total == 0) text.AppendLine("  (none)");
        else
        {
            // The busiest buckets, shown in size order.
            var shown = Enumerable.Range(0, buckets.Length).Where(i => buckets[i] > 0)
                .OrderByDescending(i => buckets[i]).Take(MaxHistogramLines).Order().ToList();
            ulong max = shown.Max(i => buckets[i]);
            foreach (int i in shown)
            {
                int bar = (int)Math.Max(1, 46 * buckets[i] / max);
                text.AppendLine($"  {Format.Bucket(i),-10} {Format.Count(buckets[i]),12} {new string('■', bar)}");
            }
        }
        text.AppendLine();
        if (sites is not null)
        {
            // The sampled allocation sites (TopSites), already fitted to 80 columns.
            text.Append(sites);
            text.AppendLine();
        }
        text.AppendLine(Clip($"segment {p.SegmentPath}"));
        return text.ToString();
    }

    private static string Clip(string line) => line.Length <= 80 ? line : line[..79] + "…";
}
