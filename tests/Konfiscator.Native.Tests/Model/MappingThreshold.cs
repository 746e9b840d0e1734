using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// The model of the mapping threshold of one library instance (docs/heap.md, "Regions"): it
/// starts at 128 KiB, and freeing a large block of at least the threshold's usable bytes (and
/// less than 32 MiB) raises it: the first time to that block's usable size + 1 (glibc's rule),
/// every later time to the smallest of 128 KiB, 256 KiB, 512 KiB, … 32 MiB above that block's
/// usable size. It is process-wide state of the library, so it must follow one instance from
/// its start.
/// </summary>
internal sealed class MappingThreshold
{
    public const ulong Initial = HeapContract.LargeThreshold;
    public const ulong Max = 32ul << 20;

    public ulong Value { get; private set; } = Initial;

    private bool _raised;

    /// <summary>Whether a plain request of <paramref name="request"/> bytes gets its own mapping.</summary>
    public bool IsLarge(ulong request) => request >= Value;

    /// <summary>A large block with <paramref name="usable"/> usable bytes was freed.</summary>
    public void LargeBlockFreed(ulong usable)
    {
        if (usable < Value || usable >= Max)
            return;
        if (!_raised)
        {
            _raised = true;
            Value = usable + 1;
            return;
        }
        ulong raised = Initial;
        while (raised <= usable)
            raised <<= 1;
        Value = Math.Min(raised, Max);
    }
}
