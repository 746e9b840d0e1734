using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>The seed's driver program (tests/native/driver.c) under the allocator.</summary>
public sealed class DriverTests
{
    [Fact]
    public void Driver_PrintsIndexAndValue_ForEachOfItsFiftyInts()
    {
        var run = Preload.Run(NativePrograms.Instance.Driver, []);

        run.Result.AssertSucceeded();
        string expected = string.Concat(Enumerable.Range(0, 50).Select(n => $"index {n}: value {n}\n"));
        Assert.Equal(expected, run.Result.StdoutText);
        Assert.Equal("", run.Result.Stderr);
        run.AssertRan("driver");
    }
}
