namespace Konfiscator.Bench;

/// <summary>The benchmark cannot give meaningful results: a workload does not compile, the
/// measuring wrapper does not work, or an allocator's preload did not take effect (the process
/// kept another malloc). Failures of single runs are not thrown; they are in the results.</summary>
public sealed class BenchmarkException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BenchmarkException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public BenchmarkException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception.</summary>
    public BenchmarkException() { }
}
