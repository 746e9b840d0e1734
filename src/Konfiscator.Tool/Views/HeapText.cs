using System.Text;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Output;

namespace Konfiscator.Tool.Views;

/// <summary>The heap map as text: one character per cell, 64 to a line (fits 80 columns), a legend,
/// and the free blocks by size.</summary>
internal static class HeapText
{
    public const int CellsPerLine = 64;

    public const string Legend = "legend: █ ≥7/8 used  ▓ ≥5/8  ▒ ≥3/8  ░ ≥1/8  · free  c thread caches";

    /// <summary>The character of a cell: how much of it is used; 'c' when thread caches hold most of it.</summary>
    public static char Glyph(HeapCell c)
    {
        if (c.Cached > c.Used && c.Cached >= c.Free) return 'c';
        int eighths = c.Used * 8 / HeapMapLayout.CellScale;
        return eighths switch { >= 7 => '█', >= 5 => '▓', >= 3 => '▒', >= 1 => '░', _ => '·' };
    }

    public static string Render(ProcessStats s, HeapMap? map, int maxLines = int.MaxValue)
    {
        var text = new StringBuilder();
        if (map is null)
        {
            text.AppendLine($"pid {s.Pid} ({s.Command}) publishes no heap map (an older library, or publishing is off)");
            return text.ToString();
        }
        int regions = map.Arenas.Sum(a => a.Regions.Count);
        text.AppendLine($"heap of pid {s.Pid} ({s.Command}): {regions} region{(regions == 1 ? "" : "s")} in {map.Arenas.Count} arena{(map.Arenas.Count == 1 ? "" : "s")}{Age(map)}");
        text.AppendLine($"{Format.BytesShort(map.UsedBytes)} used, {Format.BytesShort(map.FreeBytes)} free, {Format.BytesShort(map.CachedBytes)} in thread caches");
        text.AppendLine(Legend);
        int lines = 3;
        foreach (var arena in map.Arenas)
        {
            foreach (var region in arena.Regions)
            {
                if (lines >= maxLines) break;
                text.AppendLine($"arena {arena.Arena}  0x{region.Start:x}  {Format.BytesShort(region.Bytes)}, cells of {Format.BytesShort(arena.CellBytes)}");
                lines++;
                for (int i = 0; i < region.CellCount && lines < maxLines; i += CellsPerLine)
                {
                    var line = new StringBuilder("  ");
                    for (int j = i; j < Math.Min(region.CellCount, i + CellsPerLine); j++)
                        line.Append(Glyph(arena.Cells[region.FirstCell + j]));
                    text.AppendLine(line.ToString());
                    lines++;
                }
            }
            if (arena.OmittedRegions > 0)
                text.AppendLine($"arena {arena.Arena}: {arena.OmittedRegions} more regions ({Format.BytesShort(arena.OmittedBytes)}) not drawn");
        }
        if (map.Unsettled > 0)
            text.AppendLine($"({map.Unsettled} arena{(map.Unsettled == 1 ? "" : "s")} changed too fast to read whole; try again)");
        return text.ToString();
    }

    /// <summary>", as of 2.1 s ago": the map is rebuilt on the allocator's slow paths, so a process
    /// that has gone quiet shows its heap as it was when it last had one.</summary>
    internal static string Age(HeapMap map)
    {
        if (map.Arenas.Count == 0) return "";
        // Both sides read CLOCK_MONOTONIC_COARSE in milliseconds (.NET's TickCount64 on Linux).
        long age = Environment.TickCount64 - (long)map.Arenas.Max(a => a.UpdatedMs);
        return age < 1000 ? "" : $", as of {age / 1000.0:0.0} s ago";
    }

    /// <summary>Free blocks by size, one line per power-of-two bucket that has any, with a bar.</summary>
    public static string FreeBlocks(HeapMap map)
    {
        var buckets = map.FreeHistogram();
        var text = new StringBuilder("free blocks by size:\n");
        ulong max = buckets.DefaultIfEmpty(0UL).Max();
        if (max == 0) return text.Append("  (none)\n").ToString();
        for (int i = 0; i < buckets.Length; i++)
        {
            if (buckets[i] == 0) continue;
            string label = i == buckets.Length - 1 ? $"> {Format.ShortBytes(1UL << (i - 1))}" : Format.Bucket(i);
            int bar = (int)Math.Max(1, 40 * buckets[i] / max);
            text.AppendLine($"  {label,-10} {Format.Count(buckets[i]),9} {new string('■', bar)}");
        }
        return text.ToString();
    }
}
