using CsCheck;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

internal enum HeapOpKind
{
    Malloc,
    Calloc,
    Memalign,
    PosixMemalign,
    Realloc,
    Free,
    /// <summary>A request of 128 KiB or more: its own mapping while below the mapping threshold,
    /// in the heap once freed large blocks have raised the threshold above it.</summary>
    MallocLarge,
    /// <summary>malloc_trim(0): wholly free regions and the free ends of the others go back.</summary>
    Trim,
}

/// <summary>
/// One step of a random sequence. <see cref="Pick"/> chooses among the blocks alive when the step
/// runs (modulo their number), so any sequence is valid whatever came before, and CsCheck can
/// shrink sequences freely.
/// </summary>
internal readonly record struct HeapOp(HeapOpKind Kind, int Size, int Count = 0, int AlignShift = 0, int Pick = 0)
{
    public override string ToString() => Kind switch
    {
        HeapOpKind.Malloc => $"malloc({Size})",
        HeapOpKind.MallocLarge => $"malloc({Size})",
        HeapOpKind.Calloc => $"calloc({Count}, {Size})",
        HeapOpKind.Memalign => $"memalign({1 << AlignShift}, {Size})",
        HeapOpKind.PosixMemalign => $"posix_memalign({1 << AlignShift}, {Size})",
        HeapOpKind.Realloc => $"realloc(pick {Pick}, {Size})",
        HeapOpKind.Free => $"free(pick {Pick})",
        HeapOpKind.Trim => "malloc_trim(0)",
        _ => Kind.ToString(),
    };
}

/// <summary>Generators of operations and sequences.</summary>
internal static class HeapOps
{
    /// <summary>The largest request the model test makes in the arena: below 128 KiB by a margin,
    /// so that its block (request + header, rounded) is also below 128 KiB and no reading of
    /// "request of 128 KiB or more" can send it to its own mapping.</summary>
    public const int MaxArenaRequest = (int)HeapContract.LargeThreshold - 64;

    /// <summary>Mostly small, some medium, a few up to the arena's limit.</summary>
    public static readonly Gen<int> Size = Gen.Frequency(
        (40, Gen.Int[0, 128]),
        (30, Gen.Int[129, 1024]),
        (20, Gen.Int[1025, 16 * 1024]),
        (10, Gen.Int[16 * 1024 + 1, MaxArenaRequest]));

    private static readonly Gen<int> s_pick = Gen.Int[0, 1 << 20];

    public static readonly Gen<HeapOp> Op = Gen.Frequency(
        (28, Size.Select(size => new HeapOp(HeapOpKind.Malloc, size))),
        (6, Gen.Select(Gen.Int[0, 64], Gen.Int[0, 2047], (count, size) => new HeapOp(HeapOpKind.Calloc, size, Count: count))),
        // Alignments 1 B .. 64 KiB: above that a request gets its own mapping.
        (6, Gen.Select(Gen.Int[0, 16], Size, (shift, size) => new HeapOp(HeapOpKind.Memalign, size, AlignShift: shift))),
        (3, Gen.Select(Gen.Int[3, 16], Size, (shift, size) => new HeapOp(HeapOpKind.PosixMemalign, size, AlignShift: shift))),
        (20, Gen.Select(s_pick, Size, (pick, size) => new HeapOp(HeapOpKind.Realloc, size, Pick: pick))),
        (30, s_pick.Select(pick => new HeapOp(HeapOpKind.Free, 0, Pick: pick))),
        (2, Gen.Int[(int)HeapContract.LargeThreshold, 400_000].Select(size => new HeapOp(HeapOpKind.MallocLarge, size))),
        (1, Gen.Const(new HeapOp(HeapOpKind.Trim, 0))));

    public static Gen<HeapOp[]> Sequence(int minLength, int maxLength) => Op.Array[minLength, maxLength];
}
