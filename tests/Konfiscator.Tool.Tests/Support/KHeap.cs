using System.Diagnostics;
using System.Globalization;

namespace Konfiscator.Tool.Tests.Support;

/// <summary>native/kheap.c under the library: a heap of known shape, and what the library's debug
/// exports say about it (regions and free blocks of its arena) at each sync point.</summary>
internal sealed class KHeap : IDisposable
{
    private readonly TempDir _work;
    public Process Process { get; }
    public string Work => _work.Path;

    private KHeap(Process process, TempDir work)
    {
        Process = process;
        _work = work;
    }

    /// <summary>Compiles kheap once per test run.</summary>
    public static string Program => s_program.Value;
    private static readonly Lazy<string> s_program = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), $"kheap-bin-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        return Artifacts.CompileC("kheap.c", dir, "-O0", "-fno-builtin");
    });

    /// <summary>Starts kheap preloaded, publishing into <paramref name="statsDir"/>, thread caches off
    /// unless asked for (so every block is used or free, as the debug exports see them), and waits
    /// for its first sync point.</summary>
    public static async Task<KHeap> StartAsync(string statsDir, bool many = false, bool threadCaches = false,
        IDictionary<string, string>? environment = null)
    {
        var work = new TempDir("kheap");
        var start = new ProcessStartInfo(Program) { UseShellExecute = false };
        start.ArgumentList.Add(work.Path);
        if (many) start.ArgumentList.Add("many");
        start.Environment["LD_PRELOAD"] = Artifacts.Library;
        start.Environment["KONFISCATOR_STATS_DIR"] = statsDir;
        if (!threadCaches) start.Environment["KONFISCATOR_TCACHE"] = "0";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        var heap = new KHeap(Process.Start(start)!, work);
        await heap.WaitForAsync("ready1");
        return heap;
    }

    public async Task WaitForAsync(string marker)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(Path.Combine(Work, marker)))
        {
            if (Process.HasExited) throw new Xunit.Sdk.XunitException($"kheap exited with {Process.ExitCode} before {marker}");
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"kheap never reached {marker}");
            await Task.Delay(10);
        }
    }

    public void Go(string marker) => File.Create(Path.Combine(Work, marker)).Dispose();

    /// <summary>Region (start, bytes) as konfiscator_debug_regions lists them (first block and sentinel).</summary>
    public List<(ulong Start, ulong Bytes)> Regions() =>
        Pairs("regions").Select(p => (p.A - 48, p.B + 16 - (p.A - 48))).ToList();

    /// <summary>Free blocks (address, bytes) from konfiscator_debug_free_blocks.</summary>
    public List<(ulong Address, ulong Bytes)> FreeBlocks() => Pairs("free").Select(p => (p.A, p.B)).ToList();

    public int HeapCheck() => int.Parse(File.ReadAllText(Path.Combine(Work, "check")), CultureInfo.InvariantCulture);

    private List<(ulong A, ulong B)> Pairs(string name) =>
        File.ReadAllLines(Path.Combine(Work, name)).Where(l => l.Length > 0).Select(l =>
        {
            string[] parts = l.Split(' ');
            return (ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    ulong.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }).ToList();

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
        }
        Process.Dispose();
        _work.Dispose();
    }
}
