using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// The model of the mapping threshold of one library instance (docs/heap.md, "Regions"): it
/// starts at 128 KiB, and freeing a large block raises it to just above that block's usable size
/// (read here as usable + 1: a request of exactly that size goes to the heap), at most 32 MiB.
/// It is process-wide state of the library, so it must follow one instance from its start. (The
/// model test's large blocks are far below 32 MiB, where the readings of "at most" agree.)
/// </summary>
internal sealed class MappingThreshold
{
    public const ulong Initial = HeapContract.LargeThreshold;
    public const ulong Max = 32ul << 20;

    public ulong Value { get; private set; } = Initial;

    /// <summary>Whether a plain request of <paramref name="request"/> bytes gets its own mapping.</summary>
    public bool IsLarge(ulong request) => request >= Value;

    /// <summary>A large block with <paramref name="usable"/> usable bytes was freed.</summary>
    public void LargeBlockFreed(ulong usable)
    {
        if (usable >= Value)
            Value = Math.Min(usable + 1, Max);
    }
}
