using ELFSharp.ELF;
using ELFSharp.ELF.Sections;

namespace Konfiscator.Tool.Profiling;

/// <summary>The function symbols of one ELF file (.symtab, else .dynsym), sorted by address, read
/// with ELFSharp. Addresses are file (link-time) addresses, as module+offset frames give them.</summary>
internal sealed class ElfSymbols
{
    private readonly ulong[] _starts;
    private readonly ulong[] _sizes;
    private readonly string[] _names;

    private ElfSymbols(List<(ulong Start, ulong Size, string Name)> symbols)
    {
        symbols.Sort((a, b) => a.Start.CompareTo(b.Start));
        _starts = symbols.Select(s => s.Start).ToArray();
        _sizes = symbols.Select(s => s.Size).ToArray();
        _names = symbols.Select(s => s.Name).ToArray();
    }

    public int Count => _names.Length;

    /// <summary>Loads the symbols of <paramref name="path"/>; null when it is not a readable 64-bit ELF file.</summary>
    public static ElfSymbols? Load(string path)
    {
        try
        {
            if (!File.Exists(path) || !ELFReader.TryLoad(path, out IELF elf)) return null;
            using (elf)
            {
                if (elf.Class != Class.Bit64) return null;
                var symbols = new List<(ulong, ulong, string)>();
                var tables = elf.GetSections<ISymbolTable>().ToList();
                // A full symbol table when the file has one (not stripped); the dynamic one otherwise.
                var chosen = tables.Where(t => t.Type == SectionType.SymbolTable).ToList();
                if (chosen.Count == 0) chosen = tables;
                foreach (var table in chosen)
                {
                    foreach (var entry in table.Entries)
                    {
                        if (entry is not SymbolEntry<ulong> symbol) continue;
                        if (symbol.Type != SymbolType.Function || symbol.Value == 0 || string.IsNullOrEmpty(symbol.Name)) continue;
                        if (symbol.PointedSectionIndex == 0) continue; // undefined: lives elsewhere
                        symbols.Add((symbol.Value, symbol.Size, symbol.Name));
                    }
                }
                return new ElfSymbols(symbols);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException
                                      or ArgumentException or IndexOutOfRangeException or EndOfStreamException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>The function that contains file address <paramref name="address"/>, or null.</summary>
    public string? Lookup(ulong address)
    {
        int lo = 0, hi = _starts.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_starts[mid] <= address) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (found < 0) return null;
        // Aliases share a start; any of them that covers the address will do.
        for (int i = found; i >= 0 && _starts[i] == _starts[found]; i--)
            if (_sizes[i] == 0 || address < _starts[i] + _sizes[i]) return _names[i];
        return null;
    }
}
