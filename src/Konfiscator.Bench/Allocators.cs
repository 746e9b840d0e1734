using System.Diagnostics;
using Konfiscator.Stats;
using System.Runtime.InteropServices;

namespace Konfiscator.Bench;

/// <summary>An allocator as the run found it.</summary>
/// <param name="Name">glibc, konfiscator, konfiscator-nostats, jemalloc, mimalloc or tcmalloc.</param>
/// <param name="Library">The preloaded library (null for glibc, which is not preloaded).</param>
/// <param name="Available">False when its library is not installed: reported, not run.</param>
/// <param name="Note">Why it is not available, or a remark (e.g. "KONFISCATOR_STATS=0").</param>
public sealed record AllocatorInfo(string Name, string? Library, bool Available, string? Note)
{
    /// <summary>The package version (dpkg), glibc's version, or for konfiscator a hash and the time
    /// of the build, so a result says which build it measured.</summary>
    public string? Version { get; init; }

    /// <summary>True for glibc, the baseline of every ratio.</summary>
    public bool IsBaseline => Name == AllocatorCatalog.Glibc;

    /// <summary>True for a library the user named (<see cref="BenchOptions.Libraries"/>), not one
    /// the bench knows.</summary>
    public bool IsNamedLibrary { get; init; }

    /// <summary>Glibc, one of Konfiscator's variants or a named library: a failed run of one of these
    /// is what the benchmark is for, and fails the run (<see cref="BenchResults.HasOwnFailures"/>).</summary>
    public bool IsOwn => IsBaseline || IsNamedLibrary || Name.StartsWith(AllocatorCatalog.Konfiscator, StringComparison.Ordinal);

    /// <summary>Environment variables set for this allocator's runs (beside LD_PRELOAD).</summary>
    internal IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
}

internal static class AllocatorCatalog
{
    public const string Glibc = "glibc";
    public const string Konfiscator = "konfiscator";
    public const string KonfiscatorNoStats = "konfiscator-nostats";
    /// <summary>Allocation sampling off (KONFISCATOR_SAMPLE_BYTES=0), and at a mean of 64 KiB:
    /// with the default (512 KiB) they give the cost of sampling as ratios in one run.</summary>
    public const string KonfiscatorNoSample = "konfiscator-nosample";
    public const string KonfiscatorSample64K = "konfiscator-sample64k";

    /// <summary>Every allocator name, in the order tables show them.</summary>
    public static readonly IReadOnlyList<string> Names =
        [Glibc, Konfiscator, KonfiscatorNoStats, KonfiscatorNoSample, KonfiscatorSample64K, "jemalloc", "mimalloc", "tcmalloc"];

    public static readonly IReadOnlyList<string> Defaults = [Glibc, Konfiscator, "jemalloc", "mimalloc", "tcmalloc"];

    /// <summary>The Debian package and shared-object name of each third-party allocator.</summary>
    private static readonly Dictionary<string, (string Package, string SoName)> ThirdParty = new()
    {
        ["jemalloc"] = ("libjemalloc2", "libjemalloc.so.2"),
        ["mimalloc"] = ("libmimalloc2.0", "libmimalloc.so.2"),
        ["tcmalloc"] = ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    };

    public static string? Canonical(string name) =>
        Names.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Finds every requested allocator's library; a missing one becomes not available.</summary>
    public static IReadOnlyList<AllocatorInfo> Resolve(IReadOnlyList<string> names, BenchOptions options, string statsDirectory,
        string snapshotDirectory)
    {
        var result = new List<AllocatorInfo>();
        Dictionary<string, string>? ldconfig = null;
        foreach (string name in names)
        {
            if (options.Libraries?.FirstOrDefault(l => l.Name == name) is NamedLibrary named)
            {
                result.Add(Build(name, named.Path, null, statsDirectory, snapshotDirectory) with { IsNamedLibrary = true });
                continue;
            }
            string? explicitPath = null;
            options.AllocatorLibraries?.TryGetValue(name, out explicitPath);
            switch (name)
            {
                case Glibc:
                    result.Add(new AllocatorInfo(Glibc, null, true, "system allocator, not preloaded (baseline)")
                        { Version = Native.GlibcVersion() });
                    break;
                case Konfiscator:
                case KonfiscatorNoStats:
                case KonfiscatorNoSample:
                case KonfiscatorSample64K:
                {
                    string? path = explicitPath ?? options.KonfiscatorLibrary ?? FindKonfiscator();
                    string? sampleBytes = name switch { KonfiscatorNoSample => "0", KonfiscatorSample64K => "65536", _ => null };
                    result.Add(Build(name, path, sampleBytes, statsDirectory, snapshotDirectory));
                    break;
                }
                default:
                {
                    var (package, soName) = ThirdParty[name];
                    string? path = explicitPath;
                    if (path is null)
                    {
                        ldconfig ??= ReadLdconfigCache();
                        path = FindSystemLibrary(soName, ldconfig);
                    }
                    if (path is not null && File.Exists(path))
                        result.Add(new AllocatorInfo(name, path, true, null) { Version = PackageVersion(package) });
                    else
                        result.Add(new AllocatorInfo(name, path, false,
                            $"not installed: {soName} not found (Debian package {package})"));
                    break;
                }
            }
        }
        return result;
    }

    /// <summary>A build of the library (Konfiscator's own variants, or a library the user named) as the
    /// run will preload it: a copy taken now, statistics published into the run's directory (not for
    /// konfiscator-nostats), and <paramref name="sampleBytes"/> as the sampling mean when given.</summary>
    private static AllocatorInfo Build(string name, string? path, string? sampleBytes, string statsDirectory, string snapshotDirectory)
    {
        bool stats = name != KonfiscatorNoStats;
        string? note = !stats ? $"{StatsSchema.PublishVariable}=0" : sampleBytes is null ? null : $"{StatsSchema.SampleBytesVariable}={sampleBytes}";
        if (path is null || !File.Exists(path))
            return new AllocatorInfo(name, path, false, Names.Contains(name)
                ? "not installed: libkonfiscator.so not found" + (path is null ? "" : $" at {path}") +
                  " (build it with ./build.sh --lib-only, or set KONFISCATOR_LIB)"
                : $"not installed: no file at {path}");
        // Measure a copy taken now: a rebuild during the run must not mix two builds.
        string original = Path.GetFullPath(path);
        string copy = Snapshot(original, snapshotDirectory);
        note = (note is null ? "" : note + "; ") + "a copy of " + original + " taken at the start";
        var env = new Dictionary<string, string>
        {
            [StatsSchema.PublishVariable] = stats ? "1" : "0",
            [StatsSchema.DirectoryVariable] = statsDirectory,
        };
        if (sampleBytes is not null) env[StatsSchema.SampleBytesVariable] = sampleBytes;
        return new AllocatorInfo(name, copy, true, note) { Environment = env, Version = BuildIdentity(copy) };
    }

    /// <summary>The konfiscator library by the documented search order, or null.</summary>
    public static string? FindKonfiscator()
    {
        string? custom = System.Environment.GetEnvironmentVariable("KONFISCATOR_LIB");
        if (!string.IsNullOrEmpty(custom)) return Path.GetFullPath(custom);
        string beside = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "lib", "libkonfiscator.so"));
        if (File.Exists(beside)) return beside;
        foreach (string start in new[] { AppContext.BaseDirectory, System.Environment.CurrentDirectory })
        {
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "artifacts", "lib", "libkonfiscator.so");
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    /// <summary>Copies a library into the run's directory (under a name with its hash, so equal
    /// builds share one copy) and returns the copy's path.</summary>
    private static string Snapshot(string path, string directory)
    {
        byte[] bytes = File.ReadAllBytes(path);
        string hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes))[..16].ToLowerInvariant();
        string dir = Path.Combine(directory, "lib-" + hash);
        string copy = Path.Combine(dir, Path.GetFileName(path));
        if (!File.Exists(copy))
        {
            WorkloadBuilder.CreatePrivateDirectory(dir);
            string temp = copy + $".tmp-{System.Environment.ProcessId}";
            File.WriteAllBytes(temp, bytes);
            File.SetLastWriteTimeUtc(temp, File.GetLastWriteTimeUtc(path));
            File.Move(temp, copy, overwrite: true);
        }
        return copy;
    }

    /// <summary>"sha256 0123abcd…, built 2025-01-02 03:04 UTC" of a library file.</summary>
    private static string BuildIdentity(string path)
    {
        using var stream = File.OpenRead(path);
        string hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stream))[..12].ToLowerInvariant();
        return $"sha256 {hash}, built {File.GetLastWriteTimeUtc(path):yyyy-MM-dd HH:mm} UTC";
    }

    /// <summary>The installed version of a Debian package, or null (no dpkg, not installed through it).</summary>
    private static string? PackageVersion(string package)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("dpkg-query", ["-W", "-f=${Version}", package])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            if (p is null) return null;
            string text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 && text.Length > 0 ? $"{package} {text}" : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string? FindSystemLibrary(string soName, Dictionary<string, string> ldconfig)
    {
        if (ldconfig.TryGetValue(soName, out string? cached) && File.Exists(cached)) return cached;
        string multiarch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x86_64-linux-gnu",
            Architecture.Arm64 => "aarch64-linux-gnu",
            _ => "",
        };
        string[] dirs =
        [
            $"/usr/lib/{multiarch}", $"/lib/{multiarch}", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib",
        ];
        return dirs.Select(d => Path.Combine(d, soName)).FirstOrDefault(File.Exists);
    }

    /// <summary>soname → path from <c>ldconfig -p</c> (for this process's architecture); empty if
    /// ldconfig is not there.</summary>
    private static Dictionary<string, string> ReadLdconfigCache()
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string exe in new[] { "/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig" })
        {
            try
            {
                using var p = Process.Start(new ProcessStartInfo(exe, "-p")
                {
                    RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
                });
                if (p is null) continue;
                string text = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                string arch = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? "x86-64" : "";
                foreach (string line in text.Split('\n'))
                {
                    // "	libjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2"
                    int arrow = line.IndexOf("=>", StringComparison.Ordinal);
                    int paren = line.IndexOf('(', StringComparison.Ordinal);
                    if (arrow < 0 || paren < 0 || paren > arrow) continue;
                    string so = line[..paren].Trim();
                    string flags = line[paren..arrow];
                    if (arch.Length > 0 && !flags.Contains(arch, StringComparison.Ordinal)) continue;
                    map.TryAdd(so, line[(arrow + 2)..].Trim());
                }
                return map;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // not at this path; try the next
            }
        }
        return map;
    }
}
