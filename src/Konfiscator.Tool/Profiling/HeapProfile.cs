using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Tool.Profiling;

/// <summary>One distinct stack with its estimates: bytes and blocks live now (from the live
/// samples), and allocated since the start (from the stack's cumulative counts).</summary>
internal sealed record ProfileStack(IReadOnlyList<ProfileFrame> Frames, double InUseBytes, double InUseObjects,
    double AllocBytes, double AllocObjects, int LiveSamples)
{
    /// <summary>The allocation site: the innermost frame outside the allocator, libc, the dynamic
    /// linker and C++'s operator new (which only pass the call on).</summary>
    public ProfileFrame? Site => Frames.FirstOrDefault(f => !HeapProfile.IsPlumbing(f)) ?? Frames.FirstOrDefault();

    public string SiteName => Site?.Display ?? "[no frames]";
}

/// <summary>A process's heap by allocation site, estimated from its sample tables: every sample
/// stands for size / (1 - exp(-size/mean)) bytes (docs/profiling.md), so sums are unbiased.</summary>
internal sealed class HeapProfile
{
    public required int Pid { get; init; }
    public required string Command { get; init; }
    public required ulong MeanBytes { get; init; }
    public required bool Peak { get; init; }
    public required IReadOnlyList<ProfileStack> Stacks { get; init; }
    public required SampleTable Table { get; init; }
    public DateTimeOffset Time { get; init; } = DateTimeOffset.UtcNow;

    public double InUseBytes => Stacks.Sum(s => s.InUseBytes);
    public double InUseObjects => Stacks.Sum(s => s.InUseObjects);

    public static HeapProfile Build(SampleTable table, Symbolizer symbolizer, int pid, string command, bool peak)
    {
        var live = new Dictionary<uint, (double Bytes, double Objects, int Count)>();
        foreach (var sample in table.Samples)
        {
            double w = table.Weight(sample);
            live.TryGetValue(sample.StackId, out var sum);
            live[sample.StackId] = (sum.Bytes + w, sum.Objects + w / sample.Size, sum.Count + 1);
        }
        var stacks = new List<ProfileStack>();
        foreach (var stack in table.Stacks.Values)
        {
            live.TryGetValue(stack.Id, out var now);
            stacks.Add(new ProfileStack(symbolizer.Resolve(stack.Frames, table.Modules), now.Bytes, now.Objects,
                stack.AllocBytes, stack.AllocObjects, now.Count));
        }
        if (live.TryGetValue(SampleLayout.UnknownStack, out var unknown))
            stacks.Add(new ProfileStack([new ProfileFrame(0, "", 0, "[stack unknown: stack table full]")],
                unknown.Bytes, unknown.Objects, 0, 0, unknown.Count));
        // Live samples whose stack entry could not be read this time (torn) keep their bytes.
        double orphanBytes = 0, orphanObjects = 0;
        int orphans = 0;
        foreach (var (id, sum) in live)
        {
            if (id == SampleLayout.UnknownStack || table.Stacks.ContainsKey(id)) continue;
            orphanBytes += sum.Bytes;
            orphanObjects += sum.Objects;
            orphans += sum.Count;
        }
        if (orphans > 0)
            stacks.Add(new ProfileStack([new ProfileFrame(0, "", 0, "[stack unreadable]")], orphanBytes, orphanObjects, 0, 0, orphans));
        return new HeapProfile
        {
            Pid = pid,
            Command = command,
            MeanBytes = table.MeanBytes,
            Peak = peak,
            Stacks = stacks,
            Table = table,
            Time = peak && table.PeakTimeNs > 0
                ? DateTimeOffset.FromUnixTimeMilliseconds((long)(table.PeakTimeNs / 1_000_000))
                : DateTimeOffset.UtcNow,
        };
    }

    /// <summary>Sites by bytes in use, largest first.</summary>
    public IReadOnlyList<SiteFigures> Sites()
    {
        return Stacks.GroupBy(s => s.SiteName)
            .Select(g => new SiteFigures(g.Key, g.Sum(s => s.InUseBytes), g.Sum(s => s.InUseObjects),
                g.Sum(s => s.AllocBytes), g.Sum(s => s.AllocObjects), g.Sum(s => s.LiveSamples)))
            .OrderByDescending(s => s.InUseBytes).ThenByDescending(s => s.AllocBytes).ThenBy(s => s.Site, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Frames that only pass an allocation on: this library, libc and the dynamic linker
    /// (strdup, fopen, ...), and C++'s operator new.</summary>
    public static bool IsPlumbing(ProfileFrame frame)
    {
        string module = frame.ModuleName;
        if (module.StartsWith("libkonfiscator", StringComparison.Ordinal) || module.StartsWith("libc.so", StringComparison.Ordinal)
            || module.StartsWith("libc-", StringComparison.Ordinal) || module.StartsWith("ld-linux", StringComparison.Ordinal))
            return true;
        string? f = frame.Function;
        return f is not null && (f.StartsWith("operator new", StringComparison.Ordinal) || f is "_Znwm" or "_Znam"
                                 || f.StartsWith("_ZnwmSt", StringComparison.Ordinal) || f.StartsWith("_ZnamSt", StringComparison.Ordinal));
    }
}

/// <summary>One allocation site's estimates.</summary>
internal sealed record SiteFigures(string Site, double InUseBytes, double InUseObjects, double AllocBytes, double AllocObjects, int LiveSamples);
