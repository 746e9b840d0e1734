using Konfiscator.Reader;

namespace Konfiscator.Tool.Profiling;

/// <summary>One frame of a sampled stack, symbolized.</summary>
/// <param name="Address">The return address in the process.</param>
/// <param name="Module">The mapped object's path ("" when no recorded object covers the address).</param>
/// <param name="Offset">The file address of the call (return address - 1 - load bias).</param>
/// <param name="Function">The function's name (demangled when c++filt can), or null when unknown.</param>
internal sealed record ProfileFrame(ulong Address, string Module, ulong Offset, string? Function)
{
    public string ModuleName => Module.Length == 0 ? "[unknown]" : Path.GetFileName(Module);

    /// <summary>The function, or module+0xoffset when there is no symbol for it.</summary>
    public string Display => Function ?? (Module.Length == 0 ? $"0x{Address:x}" : $"{ModuleName}+0x{Offset:x}");
}

/// <summary>Turns return addresses into functions: the mapped objects the library recorded (its
/// module table: path, load bias, extent, so an exited process can still be explained) and the
/// symbol tables of those files (ELFSharp). The library never symbolizes; the tool does, here.
/// Files are loaded once per symbolizer and kept (keyed by path, size and modification time).</summary>
internal sealed class Symbolizer
{
    private readonly Dictionary<(string, long, DateTime), ElfSymbols?> _files = new();
    private readonly Dictionary<string, string> _demangled = new();
    private readonly object _gate = new();

    public IReadOnlyList<ProfileFrame> Resolve(IReadOnlyList<ulong> frames, IReadOnlyList<ModuleMapping> modules)
    {
        var result = new ProfileFrame[frames.Count];
        lock (_gate)
        {
            for (int i = 0; i < frames.Count; i++) result[i] = ResolveOne(frames[i], modules);
            var pending = result.Select(f => f.Function).OfType<string>()
                .Where(n => Demangler.IsMangled(n) && !_demangled.ContainsKey(n)).ToList();
            if (pending.Count > 0)
            {
                var done = Demangler.Demangle(pending);
                foreach (string n in pending) _demangled[n] = done.TryGetValue(n, out string? d) ? d : n;
            }
            for (int i = 0; i < result.Length; i++)
                if (result[i].Function is { } f && _demangled.TryGetValue(f, out string? pretty))
                    result[i] = result[i] with { Function = pretty };
        }
        return result;
    }

    private ProfileFrame ResolveOne(ulong address, IReadOnlyList<ModuleMapping> modules)
    {
        // The newest recorded object that covers the address (an unloaded one's range may be reused).
        ModuleMapping? module = null;
        for (int i = modules.Count - 1; i >= 0; i--)
        {
            if (address >= modules[i].Start && address < modules[i].End) { module = modules[i]; break; }
        }
        if (module is null) return new ProfileFrame(address, "", 0, null);
        // A return address points after the call; the call itself is one byte earlier.
        ulong offset = address - 1 - module.LoadBias;
        var symbols = Symbols(module.Path);
        return new ProfileFrame(address, module.Path, offset, symbols?.Lookup(offset));
    }

    private ElfSymbols? Symbols(string path)
    {
        if (path.Length == 0 || path[0] != '/') return null;
        var info = new FileInfo(path);
        var key = (path, info.Exists ? info.Length : -1, info.Exists ? info.LastWriteTimeUtc : default);
        if (!_files.TryGetValue(key, out var symbols))
            _files[key] = symbols = ElfSymbols.Load(path);
        return symbols;
    }
}
