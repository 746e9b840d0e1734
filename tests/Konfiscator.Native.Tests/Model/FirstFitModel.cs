using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

/// <summary>Where the model puts a request: inside free block <paramref name="Source"/>, with its
/// header at <paramref name="Header"/> and <paramref name="BlockSize"/> bytes (more than the
/// <paramref name="Requested"/> block size when a rest below 32 bytes goes with it).</summary>
internal readonly record struct Placement(FreeBlock Source, ulong Header, ulong BlockSize, ulong Requested)
{
    public ulong GapBefore => Header - Source.Header;

    public ulong GapAfter => Source.End - (Header + BlockSize);
}

/// <summary>
/// The reference model of one arena, written from docs/heap.md alone: an address-ordered list of
/// free blocks searched linearly (the "linear walk of an address-ordered list" whose answer the
/// library's indexed search must equal), bottom-end carving, the aligned placement rule, coalescing,
/// in-place realloc, and the release of a wholly free region when another one is already kept.
/// It knows nothing of blocks in use except what callers tell it.
/// </summary>
internal sealed class FirstFitModel
{
    private const ulong Unit = HeapContract.Unit;
    private const ulong HeaderBytes = HeapContract.HeaderBytes;
    private const ulong MinBlock = HeapContract.MinBlockBytes;

    private readonly SortedDictionary<ulong, ulong> _free = [];   // header -> size
    private readonly Dictionary<ulong, ulong> _freeByEnd = [];    // end -> header
    private readonly List<Region> _regions = [];

    /// <summary>Starts from the arena as the debug exports describe it.</summary>
    public FirstFitModel(IEnumerable<FreeBlock> freeBlocks, IEnumerable<Region> regions)
    {
        foreach (var block in freeBlocks)
            AddFree(block.Header, block.Size);
        _regions.AddRange(regions);
    }

    /// <summary>How many times a freed block merged with a free neighbour.</summary>
    public int Merges { get; private set; }

    /// <summary>How many wholly free regions the model has unmapped.</summary>
    public int RegionsReleased { get; private set; }

    public IReadOnlyList<FreeBlock> FreeBlocks => _free.Select(kv => new FreeBlock(kv.Key, kv.Value)).ToList();

    public IReadOnlyList<Region> Regions => _regions.OrderBy(r => r.First).ToList();

    /// <summary>How many free blocks of the block size an aligned request tries before it
    /// settles for one large enough for any alignment (docs/heap.md, "Aligned requests").</summary>
    public const int AlignedTries = 4;

    /// <summary>The placement, or null when there is none (then the arena must map a new region).
    /// Alignment 16 or less: the lowest-addressed free block of at least the block size. Larger:
    /// the lowest of the first <see cref="AlignedTries"/> free blocks of at least the block size
    /// that can hold it; failing those, the lowest free block of at least the block size + A + 32
    /// bytes (which always can).</summary>
    public Placement? FindFit(ulong blockSize, ulong alignment)
    {
        int tried = 0;
        foreach (var (header, size) in _free)
        {
            if (size < blockSize)
                continue;
            var free = new FreeBlock(header, size);
            if (alignment > Unit && tried == AlignedTries)
            {
                if (size < blockSize + alignment + MinBlock)
                    continue;
                return FitIn(free, blockSize, alignment)
                    ?? throw new InvalidOperationException($"model bug: {free} cannot hold {blockSize} bytes aligned to {alignment}");
            }
            tried++;
            if (FitIn(free, blockSize, alignment) is { } placement)
                return placement;
        }
        return null;
    }

    /// <summary>
    /// Where a request goes inside one free block, or null if it does not fit there.
    /// Alignment 16 or less: the bottom of the block when the rest is at least 32 bytes (the rest
    /// stays free above it), else the whole block. Larger: as low as possible, payload
    /// align_up(start + 16, A), moved up by A once if the gap before would be 16 bytes; no fit if
    /// the block then passes the end; a gap after of 16 bytes goes with the block.
    /// </summary>
    public static Placement? FitIn(FreeBlock free, ulong blockSize, ulong alignment)
    {
        if (free.Size < blockSize)
            return null;
        if (alignment <= Unit)
        {
            ulong rest = free.Size - blockSize;
            return rest >= MinBlock
                ? new Placement(free, free.Header, blockSize, blockSize)
                : new Placement(free, free.Header, free.Size, blockSize);
        }

        ulong payload = HeapContract.AlignUp(free.Header + HeaderBytes, alignment);
        ulong header = payload - HeaderBytes;
        if (header - free.Header == Unit)
            header += alignment;
        if (header + blockSize > free.End)
            return null;
        ulong size = free.End - (header + blockSize) == Unit ? blockSize + Unit : blockSize;
        return new Placement(free, header, size, blockSize);
    }

    /// <summary>Hands out a placement: the gap before it (if any) stays free at the source's
    /// address, and the gap after it (if any) becomes a free block of its own. Returns the size
    /// the block really gets.</summary>
    public ulong Take(Placement placement)
    {
        if (placement.GapBefore is > 0 and < MinBlock || placement.GapAfter is > 0 and < MinBlock)
            throw new InvalidOperationException($"model bug: {placement} leaves a gap below 32 bytes");
        RemoveFree(placement.Source.Header);
        if (placement.GapBefore > 0)
            AddFree(placement.Source.Header, placement.GapBefore);
        if (placement.GapAfter > 0)
            AddFree(placement.Header + placement.BlockSize, placement.GapAfter);
        return placement.BlockSize;
    }

    /// <summary>A region the arena has just mapped: one free block from its first block to its
    /// sentinel.</summary>
    public FreeBlock AddRegion(Region region)
    {
        _regions.Add(region);
        AddFree(region.First, region.End - region.First);
        return new FreeBlock(region.First, region.End - region.First);
    }

    /// <summary>The arena grew region <paramref name="before"/> in place to <paramref name="after"/>
    /// (the same first block, a later end sentinel): the new space joins the free block that
    /// ended at the old sentinel, if any, else is a free block of its own. Returns the free block
    /// that holds it.</summary>
    public FreeBlock GrowRegion(Region before, Region after)
    {
        _regions.Remove(before);
        _regions.Add(after);
        ulong start = before.End;
        if (_freeByEnd.TryGetValue(before.End, out ulong lower))
        {
            RemoveFree(lower);
            start = lower;
        }
        AddFree(start, after.End - start);
        return new FreeBlock(start, after.End - start);
    }

    /// <summary>How many region tails <see cref="Trim"/> gave back.</summary>
    public int TailsTrimmed { get; private set; }

    /// <summary>malloc_trim: every wholly free region is unmapped; in every other region whose
    /// last block is free, the whole pages above that block's first 32 bytes and a new 16-byte
    /// end sentinel go back (the block ends just below the new sentinel).</summary>
    public void Trim()
    {
        foreach (var region in Regions)
        {
            if (IsWhollyFree(region))
            {
                RemoveFree(region.First);
                _regions.Remove(region);
                RegionsReleased++;
                continue;
            }
            if (!_freeByEnd.TryGetValue(region.End, out ulong last))
                continue;
            ulong keep = (last + MinBlock + 16 + PageSize - 1) & ~(PageSize - 1);
            if (keep >= region.End + 16)
                continue;
            RemoveFree(last);
            AddFree(last, keep - 16 - last);
            _regions.Remove(region);
            _regions.Add(new Region(region.First, keep - 16));
            TailsTrimmed++;
        }
    }

    private const ulong PageSize = 4096;

    /// <summary>Frees a block, merging it with a free lower and a free upper neighbour. A region
    /// left wholly free is unmapped if the arena already keeps another wholly free region.</summary>
    public void Free(ulong header, ulong size)
    {
        ulong start = header, end = header + size;
        if (_freeByEnd.TryGetValue(start, out ulong lower))
        {
            RemoveFree(lower);
            start = lower;
            Merges++;
        }
        if (_free.TryGetValue(end, out ulong upperSize))
        {
            RemoveFree(end);
            end += upperSize;
            Merges++;
        }
        AddFree(start, end - start);

        int index = _regions.FindIndex(r => r.First == start && r.End == end);
        if (index >= 0 && _regions.Where((_, i) => i != index).Any(IsWhollyFree))
        {
            RemoveFree(start);
            _regions.RemoveAt(index);
            RegionsReleased++;
        }
    }

    /// <summary>
    /// realloc of the block in use at <paramref name="header"/> (<paramref name="current"/> bytes)
    /// to a block of <paramref name="wanted"/> bytes, if it can stay where it is: shrinking always
    /// can (a tail of 32 bytes or more is freed); growing can when the upper neighbour is free and
    /// the two together are large enough (a surplus of 32 bytes or more stays free). Returns the
    /// block's new size, or null when it must move.
    /// </summary>
    public ulong? ResizeInPlace(ulong header, ulong current, ulong wanted)
    {
        if (wanted <= current)
        {
            ulong tail = current - wanted;
            if (tail < MinBlock)
                return current;
            Free(header + wanted, tail);
            return wanted;
        }
        ulong upper = header + current;
        if (!_free.TryGetValue(upper, out ulong upperSize) || current + upperSize < wanted)
            return null;
        RemoveFree(upper);
        ulong surplus = current + upperSize - wanted;
        if (surplus < MinBlock)
            return current + upperSize;
        AddFree(header + wanted, surplus);
        return wanted;
    }

    private bool IsWhollyFree(Region region) =>
        _free.TryGetValue(region.First, out ulong size) && region.First + size == region.End;

    private void AddFree(ulong header, ulong size)
    {
        _free.Add(header, size);
        _freeByEnd.Add(header + size, header);
    }

    private void RemoveFree(ulong header)
    {
        ulong size = _free[header];
        _free.Remove(header);
        _freeByEnd.Remove(header + size);
    }
}
