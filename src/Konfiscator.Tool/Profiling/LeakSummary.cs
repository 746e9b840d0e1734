using Konfiscator.Reader;

namespace Konfiscator.Tool.Profiling;

/// <summary>The leak report of <c>konfiscator run</c> with <c>KONFISCATOR_LEAKS=1</c>: the sampled
/// blocks still live when its processes ended, by site, symbolized (the library only writes
/// module+offset; under run it writes nothing and the tool reports instead).</summary>
internal static class LeakSummary
{
    public const int SitesPerProcess = 5;

    public static void Write(TextWriter err, IEnumerable<(ProcessStats Stats, SampleTable Table)> ended, Symbolizer symbolizer)
    {
        bool any = false;
        foreach (var (stats, table) in ended.OrderBy(e => e.Stats.Pid))
        {
            if (table.Samples.Count == 0) continue;
            any = true;
            var profile = HeapProfile.Build(table, symbolizer, stats.Pid, stats.Command, peak: false);
            err.WriteLine($"konfiscator: leaks of {stats.Command} (pid {stats.Pid}): {table.Samples.Count} sampled blocks still live at exit " +
                          $"stand for ~{Output.Format.BytesShort((ulong)profile.InUseBytes)} in ~{profile.InUseObjects:0} blocks");
            foreach (var site in profile.Sites().Where(s => s.InUseBytes >= 0.5).Take(SitesPerProcess))
            {
                var stack = profile.Stacks.Where(s => s.SiteName == site.Site).OrderByDescending(s => s.InUseBytes).First();
                string callers = string.Join(" < ", stack.Frames.SkipWhile(f => f.Display != site.Site).Skip(1).Take(4).Select(f => f.Display));
                err.WriteLine($"konfiscator:   ~{Output.Format.BytesShort((ulong)site.InUseBytes)} in ~{site.InUseObjects:0} blocks at {site.Site}" +
                              (callers.Length > 0 ? $" ({callers})" : ""));
            }
        }
        if (!any) err.WriteLine("konfiscator: leaks: no sampled block was live when the processes ended");
    }
}
