using Konfiscator.Stats;
using Prometheus;

namespace Konfiscator.Tool.Metrics;

/// <summary>Brings a prometheus-net histogram series up to counts read from a segment.
///
/// prometheus-net's histograms can only be fed observations (<c>Observe(value, count)</c>); their
/// bucket counts cannot be set. The segment already holds the distribution: a non-cumulative
/// count per power-of-two bucket and the sum of all requested sizes. So at every collection this
/// feeder observes, for each bucket whose count grew by d, d requests of one size chosen inside
/// that bucket's range (2^(i-1), 2^i], and chooses the sizes so that the observed sum grows by
/// exactly as much as the segment's sum did. The exposed family is then a true Prometheus
/// histogram whose buckets, _count and _sum equal the segment's figures.
///
/// A reader may see a torn set of counters (a bucket counted, the sum not yet, or the other way
/// round): then the sizes are kept inside their buckets and the difference is carried to the next
/// collection, so the sum catches up and never goes down.</summary>
internal sealed class HistogramFeeder
{
    private readonly long[] _observed = new long[StatsLayout.HistogramBuckets];
    private double _observedSum;

    public void Feed(IHistogram series, ReadOnlySpan<ulong> buckets, ulong sum)
    {
        Span<long> delta = stackalloc long[StatsLayout.HistogramBuckets];
        bool any = false;
        for (int i = 0; i < delta.Length; i++)
        {
            long target = buckets[i] > long.MaxValue ? long.MaxValue : (long)buckets[i];
            delta[i] = Math.Max(0, target - _observed[i]);
            any |= delta[i] > 0;
        }
        if (!any) return;

        // Smallest and largest sum these new requests can have, given their buckets.
        double low = 0, high = 0;
        for (int i = 0; i < delta.Length; i++)
        {
            if (delta[i] == 0) continue;
            low += delta[i] * Low(i);
            high += delta[i] * High(i);
        }
        double extra = Math.Clamp((double)sum - _observedSum - low, 0, high - low);

        // Give the extra to the largest buckets first (their ranges are widest).
        for (int i = delta.Length - 1; i >= 0; i--)
        {
            if (delta[i] == 0) continue;
            double room = delta[i] * (High(i) - Low(i));
            double take = Math.Min(extra, room);
            extra -= take;
            double value = Math.Clamp(Low(i) + take / delta[i], Low(i), High(i));
            series.Observe(value, delta[i]);
            _observed[i] += delta[i];
            _observedSum += value * delta[i];
        }
    }

    /// <summary>Smallest size in bucket i: sizes are whole bytes, bucket 0 holds 0 and 1.</summary>
    private static double Low(int i) => i == 0 ? 0 : Math.Pow(2, i - 1) + 1;

    private static double High(int i) => i == StatsLayout.HistogramBuckets - 1 ? double.MaxValue / 4 : Math.Pow(2, i);
}
