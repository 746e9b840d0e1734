using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// Runs a sequence of operations against a library instance on the calling thread (so in one
/// arena) and, after every step, requires konfiscator_heap_check() == 0, every pointer aligned as
/// asked, every live block's byte pattern intact when it is freed or resized (realloc keeps the
/// common prefix), calloc memory zeroed, and usable sizes right.
/// With <see cref="ModelTarget.CheckPlacement"/> it also runs the <see cref="FirstFitModel"/> side
/// by side and requires each returned address to be the model's, malloc_usable_size to be the
/// model's block size minus 16, the arena's free list and region list to equal the model's, and
/// requests at or above the mapping threshold to get their own mapping.
/// </summary>
internal sealed class ModelDriver
{
    /// <summary>The largest request the thread caches serve (docs/heap.md, "Thread caches").</summary>
    private const ulong MaxCachedRequest = HeapContract.MaxCachedRequest;

    private readonly ModelTarget _target;
    private readonly LibKonfiscator _lib;
    private readonly FirstFitModel? _model;
    private readonly ModelCoverage _coverage;
    private readonly List<LiveBlock> _live = [];
    private int _nextId;
    private int _step;
    private string _operation = "start";

    private ModelDriver(ModelTarget target, ModelCoverage coverage)
    {
        _target = target;
        _lib = target.Lib;
        _coverage = coverage;
        // The arena may hold other runs' blocks and free space: learn it as it is.
        if (target.CheckPlacement)
            _model = new FirstFitModel(_lib.FreeBlocks(), _lib.Regions());
    }

    /// <summary>Runs <paramref name="ops"/>, then frees what is left, checking all along.
    /// Throws <see cref="ModelMismatchException"/> at the first difference.</summary>
    public static void Run(ModelTarget target, IReadOnlyList<HeapOp> ops, ModelCoverage coverage)
    {
        // A thread gets its arena on its first call; make that happen before learning the arena.
        // (malloc then free leaves an arena in a state the model can learn, whatever it was.)
        target.Lib.Free(target.Lib.Malloc(1));
        var driver = new ModelDriver(target, coverage);
        driver.CheckState();
        foreach (var op in ops)
            driver.Apply(op);
        driver.FreeAll();
        if (driver._model is { } model)
        {
            coverage.Count(ModelCoverage.Merged, model.Merges);
            coverage.Count(ModelCoverage.RegionReleased, model.RegionsReleased);
            coverage.Count(ModelCoverage.TailTrimmed, model.TailsTrimmed);
        }
    }

    private void Apply(HeapOp op)
    {
        _step++;
        _operation = op.ToString();
        switch (op.Kind)
        {
            case HeapOpKind.Malloc:
            case HeapOpKind.MallocLarge:
                Allocate((ulong)op.Size, 16, () => _lib.Malloc((nuint)op.Size));
                break;
            case HeapOpKind.Calloc:
                Allocate((ulong)op.Count * (ulong)op.Size, 16, () => _lib.Calloc((nuint)op.Count, (nuint)op.Size), zeroed: true);
                break;
            case HeapOpKind.Memalign:
                Allocate((ulong)op.Size, 1ul << op.AlignShift, () => _lib.Memalign((nuint)(1ul << op.AlignShift), (nuint)op.Size));
                break;
            case HeapOpKind.PosixMemalign:
                Allocate((ulong)op.Size, 1ul << op.AlignShift, () =>
                {
                    int error = _lib.PosixMemalign(out nint p, (nuint)(1ul << op.AlignShift), (nuint)op.Size);
                    if (error != 0)
                        Fail($"posix_memalign returned {error}");
                    return p;
                });
                break;
            case HeapOpKind.Free:
                FreeOne(op.Pick);
                break;
            case HeapOpKind.Realloc:
                Realloc(op.Pick, (ulong)op.Size);
                break;
            case HeapOpKind.Trim:
                _lib.MallocTrim(0);
                _model?.Trim();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op.Kind, null);
        }
        CheckState();
    }

    private void FreeAll()
    {
        while (_live.Count > 0)
        {
            _step++;
            _operation = $"free(#{_live[^1].Id}) at the end";
            FreeOne(_live.Count - 1);
            CheckState();
        }
    }

    private void Allocate(ulong request, ulong alignment, Func<nint> call, bool zeroed = false)
    {
        // Only plain requests reach the threshold in these sequences (aligned ones stay below
        // 128 KiB with alignments up to 64 KiB).
        bool large = _target.Threshold.IsLarge(request);
        ulong block = HeapContract.BlockSize(request);
        Placement? fit = large ? null : _model?.FindFit(block, alignment);

        nint p = call();

        if (p == 0)
            Fail("returned NULL");
        if ((ulong)p % Math.Max(alignment, 16) != 0)
            Fail($"returned 0x{p:x}, not aligned to {Math.Max(alignment, 16)}");
        LiveBlock live;
        if (large)
        {
            if (_lib.Regions().Any(r => r.Contains((ulong)p)))
                Fail($"0x{p:x} is inside a region of the arena; a request at or above the mapping threshold ({_target.Threshold.Value}) must have its own mapping");
            _coverage.Count(ModelCoverage.Large);
            live = new LiveBlock(++_nextId, p, request, 0, large: true);
        }
        else
        {
            if (request >= MappingThreshold.Initial)
                _coverage.Count(ModelCoverage.BelowRaisedThreshold);
            ulong size = _model is null ? 0 : Place(fit, p, block, alignment);
            live = new LiveBlock(++_nextId, p, request, size, large: false) { Alignment = alignment };
        }
        CheckUsableSize(live);
        if (zeroed)
        {
            unsafe
            {
                int nonZero = new ReadOnlySpan<byte>((void*)p, checked((int)request)).IndexOfAnyExcept((byte)0);
                if (nonZero >= 0)
                    Fail($"calloc memory at 0x{p:x}: byte {nonZero} is not zero");
            }
        }
        BytePattern.Fill(p, 0, request, live.Id);
        _live.Add(live);
    }

    /// <summary>Checks that the library put a block of <paramref name="block"/> bytes where the
    /// model says and records it in the model; returns the block's size (which includes a rest
    /// of less than 32 bytes when the free block had one).</summary>
    private ulong Place(Placement? fit, nint payload, ulong block, ulong alignment)
    {
        ulong header = HeapContract.HeaderOf(payload);
        if (fit is { } placement)
        {
            if (header != placement.Header)
                Fail($"returned 0x{payload:x} (header 0x{header:x}); the first fit puts it at header 0x{placement.Header:x} in free block {placement.Source}");
            return Take(placement);
        }

        // No free block fits: the arena grows its topmost region in place (the same first
        // block, a later end) or maps a new region (at any address), and the request is placed
        // in the free block that holds the new space by the same rule.
        var known = _model!.Regions.ToHashSet();
        var fresh = _lib.Regions().Where(r => !known.Contains(r)).ToList();
        if (fresh.Count != 1)
            Fail($"no free block fits a {block}-byte block, so exactly one region was due to grow or be mapped; new or changed regions: [{string.Join(", ", fresh)}]");
        Region changed = fresh[0];
        Region? grown = known.Where(r => r.First == changed.First).Select(r => (Region?)r).FirstOrDefault();
        if (grown is { } before && changed.End <= before.End)
            Fail($"region {before} became {changed}: a region that no block fits may only grow");
        FreeBlock space = grown is { } old ? _model.GrowRegion(old, changed) : _model.AddRegion(changed);
        string where = grown is null ? $"the new region {changed}" : $"the region grown to {changed}";
        Placement? inRegion = FirstFitModel.FitIn(space, block, alignment);
        if (inRegion is null)
            Fail($"{where} cannot hold a {block}-byte block aligned to {alignment}");
        if (header != inRegion!.Value.Header)
            Fail($"returned 0x{payload:x} (header 0x{header:x}) in {where}; the rule puts it at header 0x{inRegion.Value.Header:x}");
        _coverage.Count(grown is null ? ModelCoverage.NewRegion : ModelCoverage.RegionGrew);
        return Take(inRegion.Value);
    }

    private ulong Take(Placement placement)
    {
        if (placement.GapAfter > 0)
            _coverage.Count(ModelCoverage.AlignedGap);
        if (placement.BlockSize > placement.Requested)
            _coverage.Count(ModelCoverage.RestAbsorbed);
        return _model!.Take(placement);
    }

    private void FreeOne(int pick)
    {
        if (_live.Count == 0)
        {
            _operation += " with nothing alive: free(NULL)";
            _lib.Free(0);
            return;
        }
        int index = pick % _live.Count;
        var block = _live[index];
        _operation += $" -> #{block.Id} at 0x{block.Payload:x}";
        CheckPattern(block, block.Requested, "before free");
        ulong usable = _lib.UsableSize(block.Payload);
        _lib.Free(block.Payload);
        _live.RemoveAt(index);
        if (block.Large)
            _target.Threshold.LargeBlockFreed(usable);
        else
            _model?.Free(HeapContract.HeaderOf(block.Payload), block.BlockSize);
    }

    private void Realloc(int pick, ulong request)
    {
        var candidates = _live.Where(b => !b.Large).ToList();
        if (candidates.Count == 0 || pick % 16 == 0)
        {
            // realloc(NULL, n) is malloc(n).
            _operation += " of NULL";
            _coverage.Count(ModelCoverage.ReallocNull);
            Allocate(request, 16, () => _lib.Realloc(0, (nuint)request));
            return;
        }
        var block = candidates[pick % candidates.Count];
        _operation += $" -> #{block.Id} at 0x{block.Payload:x} ({block.Requested} bytes, block {block.BlockSize})";
        CheckPattern(block, block.Requested, "before realloc");
        ulong header = HeapContract.HeaderOf(block.Payload);

        if (request == 0)
        {
            // realloc(p, 0) frees p and returns NULL.
            nint none = _lib.Realloc(block.Payload, 0);
            if (none != 0)
                Fail($"realloc(p, 0) returned 0x{none:x}, not NULL");
            _live.Remove(block);
            _model?.Free(header, block.BlockSize);
            _coverage.Count(ModelCoverage.ReallocZero);
            return;
        }

        ulong wanted = HeapContract.BlockSize(request);
        if (_model is null)
        {
            nint result = _lib.Realloc(block.Payload, (nuint)request);
            if (result == 0)
                Fail("returned NULL");
            // Grown but not where it was: it moved (slack allowed); otherwise in place (exact).
            block.MovedByRealloc = result != block.Payload && request > block.Requested;
            block.Payload = result;
            block.Alignment = 16;
        }
        else if (_model.ResizeInPlace(header, block.BlockSize, wanted) is { } newSize)
        {
            nint result = _lib.Realloc(block.Payload, (nuint)request);
            if (result != block.Payload)
                Fail($"returned 0x{result:x}; the block can be resized in place at 0x{block.Payload:x}");
            _coverage.Count(wanted > block.BlockSize ? ModelCoverage.GrownInPlace : ModelCoverage.ShrunkInPlace);
            block.BlockSize = newSize;
        }
        else
        {
            // A new block by the placement rule, an eighth larger than asked (docs/heap.md,
            // "realloc"), while the old one is still in use, then the old one freed.
            ulong moved = HeapContract.BlockSize(request + request / 8);
            Placement? fit = _model.FindFit(moved, 16);
            nint result = _lib.Realloc(block.Payload, (nuint)request);
            if (result == 0)
                Fail("returned NULL");
            ulong placed = Place(fit, result, moved, 16);
            _model.Free(header, block.BlockSize);
            _coverage.Count(ModelCoverage.Moved);
            block.Payload = result;
            block.BlockSize = placed;
        }
        if ((ulong)block.Payload % 16 != 0)
            Fail($"returned 0x{block.Payload:x}, not 16-byte aligned");

        ulong kept = Math.Min(block.Requested, request);
        CheckPattern(block, kept, "after realloc (the common prefix)");
        BytePattern.Fill(block.Payload, kept, request, block.Id);
        block.Requested = request;
        CheckUsableSize(block);
    }

    private void CheckUsableSize(LiveBlock block)
    {
        ulong usable = _lib.UsableSize(block.Payload);
        ulong expected = block.BlockSize - HeapContract.Overhead;
        if (block.Large)
        {
            if (usable < block.Requested)
                Fail($"malloc_usable_size(0x{block.Payload:x}) = {usable}, less than the {block.Requested} bytes asked for");
        }
        else if (_model is not null)
        {
            if (usable != expected)
                Fail($"malloc_usable_size(0x{block.Payload:x}) = {usable}; the block is {block.BlockSize} bytes, so {expected}");
        }
        else
        {
            // Without the model the exact block is unknown, but it is the request's block size
            // or 16 bytes more (a rest below 32 bytes goes with the block); a block realloc had
            // to move may also carry the eighth of slack docs/heap.md gives it.
            ulong minimum = HeapContract.BlockSize(block.Requested) - HeapContract.Overhead;
            ulong withSlack = HeapContract.BlockSize(block.Requested + block.Requested / 8) - HeapContract.Overhead;
            // A move through the thread cache takes that slack only up to the largest cached
            // size (1 KiB usable); a move within the heap takes all of it.
            ulong cachedSlack = block.Requested <= MaxCachedRequest ? Math.Min(withSlack, MaxCachedRequest) : withSlack;
            bool exact = usable == minimum || usable == minimum + HeapContract.Unit;
            bool slack = block.MovedByRealloc && (usable == withSlack || usable == withSlack + HeapContract.Unit || usable == cachedSlack || usable == cachedSlack + HeapContract.Unit);
            // A block the thread freed and held back may serve a request of its size class: at
            // least the block asked for, below the class's end (a move asks for the slack too).
            bool held = HeldFits(usable, minimum) || (block.MovedByRealloc && HeldFits(usable, withSlack));
            // An aligned request of a cached size may get its block rounded up to whole
            // alignments (an aligned run's, docs/heap.md "Thread caches").
            ulong rounded = HeapContract.AlignUp(minimum + HeapContract.Overhead, Math.Max(block.Alignment, 16)) - HeapContract.Overhead;
            bool run = block.Alignment is > 16 and <= 1024 && rounded <= MaxCachedRequest && usable == rounded;
            if (!exact && !slack && !held && !run)
                Fail($"malloc_usable_size(0x{block.Payload:x}) = {usable} for {block.Requested} bytes; expected {minimum} (or {minimum + HeapContract.Unit})" +
                     (block.MovedByRealloc ? $", or {withSlack} (+{HeapContract.Unit}) after a move" : ""));
        }
    }

    private static bool HeldFits(ulong usable, ulong askedUsable)
    {
        ulong block = usable + HeapContract.Overhead, asked = askedUsable + HeapContract.Overhead;
        return HeapContract.HeldClassEnd(asked) is { } end && block >= asked && block < end && block % HeapContract.Unit == 0;
    }

    private void CheckPattern(LiveBlock block, ulong length, string when)
    {
        long bad = BytePattern.FirstMismatch(block.Payload, 0, length, block.Id);
        if (bad >= 0)
        {
            unsafe
            {
                byte actual = ((byte*)block.Payload)[bad];
                Fail($"{when}: block #{block.Id} at 0x{block.Payload:x} ({block.Requested} bytes): byte {bad} is 0x{actual:x2}, expected 0x{BytePattern.Expected(block.Id, (ulong)bad):x2}");
            }
        }
    }

    private void CheckState()
    {
        int problems = _lib.HeapCheck();
        if (problems != 0)
            Fail($"konfiscator_heap_check() = {problems}");
        if (_model is null)
            return;

        var actualFree = _lib.FreeBlocks();
        var expectedFree = _model.FreeBlocks;
        if (!actualFree.SequenceEqual(expectedFree))
            Fail($"the arena's free blocks differ from the model's\n{Difference(expectedFree, actualFree)}");

        var actualRegions = _lib.Regions().OrderBy(r => r.First).ToList();
        var expectedRegions = _model.Regions;
        if (!actualRegions.SequenceEqual(expectedRegions))
            Fail($"the arena's regions differ from the model's\n  model:   {string.Join(", ", expectedRegions)}\n  library: {string.Join(", ", actualRegions)}");
    }

    private static string Difference<T>(IReadOnlyList<T> expected, IReadOnlyList<T> actual)
    {
        int first = 0;
        while (first < expected.Count && first < actual.Count && EqualityComparer<T>.Default.Equals(expected[first], actual[first]))
            first++;
        int from = Math.Max(0, first - 2);
        string Window(IReadOnlyList<T> list) => string.Join(", ", list.Skip(from).Take(8));
        return $"  first difference at index {first} (model has {expected.Count}, library {actual.Count})\n" +
               $"  model:   {Window(expected)}\n  library: {Window(actual)}";
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(string message) =>
        throw new ModelMismatchException($"step {_step}, {_operation}: {message}");

    private sealed class LiveBlock(int id, nint payload, ulong requested, ulong blockSize, bool large)
    {
        public int Id { get; } = id;
        public nint Payload { get; set; } = payload;
        public ulong Requested { get; set; } = requested;
        /// <summary>The block's size in bytes, header included, as the model has it (0 when
        /// there is no model, and for a large block).</summary>
        public ulong BlockSize { get; set; } = blockSize;
        public bool Large { get; } = large;
        /// <summary>Its last realloc grew it and moved it (then it may carry slack).</summary>
        public bool MovedByRealloc { get; set; }
        /// <summary>The alignment it was asked for (16 for a plain request), until a realloc.</summary>
        public ulong Alignment { get; set; } = 16;
    }
}
