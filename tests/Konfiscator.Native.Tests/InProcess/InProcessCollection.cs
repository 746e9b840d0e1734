namespace Konfiscator.Native.Tests.InProcess;

/// <summary>
/// Every test that calls the dlopen'ed library in this process. They share its arenas, and
/// several read the calling thread's arena through the debug exports and predict addresses
/// from it, so they must never run at the same time as each other.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InProcessCollection
{
    public const string Name = "in-process libkonfiscator";
}
