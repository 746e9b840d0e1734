using Konfiscator.Bench;

namespace Konfiscator.Bench.Tests;

public class StatisticsTests
{
    [Theory]
    [InlineData(new[] { 3.0 }, 3.0)]
    [InlineData(new[] { 5.0, 1.0, 3.0 }, 3.0)]
    [InlineData(new[] { 4.0, 1.0, 3.0, 2.0 }, 2.5)]
    [InlineData(new[] { 1.0, 1.0, 100.0 }, 1.0)]
    [InlineData(new[] { -2.0, 2.0 }, 0.0)]
    public void Median_is_the_middle_value_or_the_mean_of_the_two_middle_values(double[] values, double expected) =>
        Assert.Equal(expected, BenchStatistics.Median(values), 12);

    [Fact]
    public void Median_does_not_reorder_its_input()
    {
        double[] values = [3, 1, 2];
        BenchStatistics.Median(values);
        Assert.Equal([3.0, 1, 2], values);
    }

    [Fact]
    public void Median_of_nothing_or_of_NaN_is_refused()
    {
        Assert.Throws<ArgumentException>(() => BenchStatistics.Median([]));
        Assert.Throws<ArgumentException>(() => BenchStatistics.Median([1, double.NaN]));
    }

    [Fact]
    public void Geometric_mean_of_reciprocal_ratios_is_one()
    {
        Assert.Equal(1.0, BenchStatistics.GeometricMean([2, 0.5]), 12);
        Assert.Equal(4.0, BenchStatistics.GeometricMean([2, 8]), 12);
        Assert.Equal(3.0, BenchStatistics.GeometricMean([1, 3, 9]), 12);
        Assert.Equal(1.7, BenchStatistics.GeometricMean([1.7]), 12);
    }

    [Fact]
    public void Geometric_mean_refuses_empty_and_non_positive_input()
    {
        Assert.Throws<ArgumentException>(() => BenchStatistics.GeometricMean([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BenchStatistics.GeometricMean([1, 0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BenchStatistics.GeometricMean([1, -2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BenchStatistics.GeometricMean([double.PositiveInfinity]));
    }

    [Fact]
    public void Ratio_is_value_over_baseline_or_null()
    {
        Assert.Equal(0.5, BenchStatistics.Ratio(1, 2));
        Assert.Null(BenchStatistics.Ratio(null, 2));
        Assert.Null(BenchStatistics.Ratio(1, null));
        Assert.Null(BenchStatistics.Ratio(1, 0));
    }

    [Fact]
    public void Thread_scaling_counts_the_doubled_work()
    {
        // Same wall time for twice the work: perfect scaling.
        Assert.Equal(2.0, BenchStatistics.ThreadScaling(0.3, 0.3, 2)!.Value, 12);
        // Twice the wall time: no gain at all.
        Assert.Equal(1.0, BenchStatistics.ThreadScaling(0.3, 0.6, 2)!.Value, 12);
        Assert.Null(BenchStatistics.ThreadScaling(null, 0.3, 2));
        Assert.Null(BenchStatistics.ThreadScaling(0.3, 0, 2));
    }
}
