namespace Konfiscator.Bench;

/// <summary>The few statistics the results use.</summary>
public static class BenchStatistics
{
    /// <summary>The median: the middle value, or the mean of the two middle values of an even count.</summary>
    /// <exception cref="ArgumentException">No values, or a NaN among them.</exception>
    public static double Median(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        double[] sorted = values.ToArray();
        if (sorted.Length == 0) throw new ArgumentException("the median of no values is undefined", nameof(values));
        if (sorted.Any(double.IsNaN)) throw new ArgumentException("NaN among the values", nameof(values));
        Array.Sort(sorted);
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>The geometric mean, exp(mean(ln x)): the right mean for ratios (a 2× and a 0.5× average to 1×).</summary>
    /// <exception cref="ArgumentException">No values.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value that is not positive and finite.</exception>
    public static double GeometricMean(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        double sum = 0;
        int n = 0;
        foreach (double v in values)
        {
            if (!(v > 0) || double.IsInfinity(v))
                throw new ArgumentOutOfRangeException(nameof(values), v, "the geometric mean needs positive, finite values");
            sum += Math.Log(v);
            n++;
        }
        if (n == 0) throw new ArgumentException("the geometric mean of no values is undefined", nameof(values));
        return Math.Exp(sum / n);
    }

    /// <summary>value / baseline, or null when either is missing or the baseline is not positive.</summary>
    public static double? Ratio(double? value, double? baseline) =>
        value is double v && baseline is double b && b > 0 && !double.IsNaN(v) ? v / b : null;

    /// <summary>Throughput of <paramref name="threads"/> threads relative to one, when each thread does
    /// the single thread's work: threads × t1 / tN (2.0 is perfect scaling on 2 threads).</summary>
    public static double? ThreadScaling(double? oneThreadSeconds, double? manyThreadsSeconds, int threads) =>
        oneThreadSeconds is double t1 && manyThreadsSeconds is double tn && tn > 0 && t1 > 0 ? threads * t1 / tn : null;
}
