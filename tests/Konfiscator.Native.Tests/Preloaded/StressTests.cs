using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>tests/native/stress.c under the allocator: threads, cross-thread frees, thread exit,
/// fork, and a sound heap at the end.</summary>
public sealed class StressTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Stress_WithCrossThreadFreesThreadExitsAndForks_EndsWithASoundHeap(int seed)
    {
        var run = Preload.Run(NativePrograms.Instance.Stress, [seed.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

        run.Result.AssertSucceeded();
        Assert.StartsWith("stress: ok ", run.Result.StdoutText);
        run.AssertRan("stress");
    }
}
