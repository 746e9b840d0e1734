using System.Globalization;
using System.Text;
using Konfiscator.Reader.Interop;

namespace Konfiscator.Reader;

/// <summary>Where <c>konfiscator run</c> says which private stats directory it uses, so that
/// <c>ps</c>, <c>stats</c>, <c>top</c>, <c>heap</c> and the exporter's web page find the processes
/// under it: one file <c>run.&lt;pid&gt;.dir</c> per run in the subdirectory <c>runs</c> of the
/// user's default stats directory (<c>/dev/shm/konfiscator-&lt;euid&gt;/runs</c>, mode 0700),
/// holding "&lt;pid&gt; &lt;starttime&gt; &lt;directory&gt;\n". A subdirectory, because the allocator,
/// the collector and <c>konfiscator clean</c> leave subdirectories alone. An entry whose run is no
/// longer running is ignored and removed by whoever reads it.</summary>
public static class RunRegistry
{
    private const string Prefix = "run.";
    private const string Suffix = ".dir";

    /// <summary>"runs" in the user's default stats directory, whatever KONFISCATOR_STATS_DIR says.</summary>
    public static string RegistryDirectory =>
        string.Create(CultureInfo.InvariantCulture, $"{Konfiscator.Stats.StatsSchema.DefaultDirectoryPrefix}{StatsDirectory.EffectiveUid}/runs");

    /// <summary>Registers <paramref name="directory"/> as this process's run directory; dispose to
    /// remove the entry. Null (and nothing registered) when the registry directory cannot be used.</summary>
    public static IDisposable? Register(string directory, string? registry = null)
    {
        if (registry is null)
        {
            // The default stats directory first, then its runs subdirectory: created 0700 if missing, and trusted.
            registry = RegistryDirectory;
            if (StatsDirectory.EnsureTrusted(Path.GetDirectoryName(registry)!) is not null) return null;
        }
        if (StatsDirectory.EnsureTrusted(registry) is not null) return null;
        int pid = Environment.ProcessId;
        string file = Path.Combine(registry, string.Create(CultureInfo.InvariantCulture, $"{Prefix}{pid}{Suffix}"));
        string content = string.Create(CultureInfo.InvariantCulture, $"{pid} {ProcFs.SelfStartTime()} {directory}\n");
        string temp = Path.Combine(registry, string.Create(CultureInfo.InvariantCulture, $".{Prefix}{pid}.tmp"));
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                stream.Write(Encoding.UTF8.GetBytes(content));
            }
            File.Move(temp, file, overwrite: true); // a link planted at the name is replaced, not followed
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return new Entry(file, content);
    }

    /// <summary>The stats directories of the runs that are still running (their entries checked:
    /// the run's pid and start time, the directory trusted); stale entries are removed.</summary>
    public static IReadOnlyList<string> LiveRunDirectories(string? registry = null, IProcessProbe? probe = null)
    {
        registry ??= RegistryDirectory;
        probe ??= ProcFs.Instance;
        var found = new List<string>();
        IEnumerable<string> entries;
        try
        {
            if (Libc.LStat(registry, out var st) != 0 || !st.IsDirectory || st.Uid != StatsDirectory.EffectiveUid
                || (st.Mode & 0x3F) != 0) return found;
            entries = Directory.EnumerateFiles(registry, Prefix + "*" + Suffix).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return found;
        }
        foreach (string file in entries)
        {
            if (Parse(file) is not { } entry) continue;
            if (!probe.IsRunning(entry.Pid, entry.StartTime))
            {
                TryDelete(file);
                continue;
            }
            if (Libc.LStat(entry.Directory, out var dir) == 0 && dir.IsDirectory && !dir.IsSymlink
                && dir.Uid == StatsDirectory.EffectiveUid && (dir.Mode & 0x3F) == 0)
                found.Add(entry.Directory);
        }
        return found;
    }

    private static (int Pid, ulong StartTime, string Directory)? Parse(string file)
    {
        try
        {
            if (Libc.LStat(file, out var st) != 0 || !st.IsRegular || st.Size > 4096) return null;
            string[] parts = File.ReadAllText(file).TrimEnd('\n').Split(' ', 3);
            if (parts.Length == 3
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong start)
                && Path.IsPathFullyQualified(parts[2]))
                return (pid, start, parts[2]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private sealed class Entry(string file, string content) : IDisposable
    {
        private bool _removed;

        public void Dispose()
        {
            if (_removed) return;
            _removed = true;
            try
            {
                if (File.Exists(file) && File.ReadAllText(file) == content) File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
