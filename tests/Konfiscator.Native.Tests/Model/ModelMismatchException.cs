namespace Konfiscator.Native.Tests.Model;

/// <summary>The library did something the reference model (docs/heap.md) does not allow.</summary>
public sealed class ModelMismatchException : Exception
{
    public ModelMismatchException()
    {
    }

    public ModelMismatchException(string message)
        : base(message)
    {
    }

    public ModelMismatchException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
