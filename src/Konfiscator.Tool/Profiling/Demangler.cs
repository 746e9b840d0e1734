using System.Diagnostics;

namespace Konfiscator.Tool.Profiling;

/// <summary>C++ names demangled by binutils' <c>c++filt</c> when it is installed (no well-kept
/// Itanium-ABI demangler exists for .NET); names stay mangled without it. One process per batch.</summary>
internal static class Demangler
{
    private static readonly Lazy<string?> s_tool = new(() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "c++filt")).FirstOrDefault(File.Exists));

    public static bool Available => s_tool.Value is not null;

    public static bool IsMangled(string name) => name.StartsWith("_Z", StringComparison.Ordinal);

    /// <summary>Demangled forms of <paramref name="names"/> (mangled ones only), by mangled name.</summary>
    public static Dictionary<string, string> Demangle(IEnumerable<string> names)
    {
        var mangled = names.Where(IsMangled).Distinct().ToList();
        var result = new Dictionary<string, string>();
        if (mangled.Count == 0 || s_tool.Value is null) return result;
        try
        {
            var start = new ProcessStartInfo(s_tool.Value)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(start)!;
            var reading = process.StandardOutput.ReadToEndAsync();
            foreach (string name in mangled) process.StandardInput.WriteLine(name);
            process.StandardInput.Close();
            string[] lines = reading.Result.Split('\n');
            process.WaitForExit(10_000);
            for (int i = 0; i < mangled.Count && i < lines.Length; i++)
                if (lines[i].Length > 0) result[mangled[i]] = lines[i];
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
        }
        return result;
    }
}
