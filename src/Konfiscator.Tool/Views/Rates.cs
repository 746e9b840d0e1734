using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Tool.Views;

/// <summary>Figures that views derive from segments: calls, ages, rates between two readings.</summary>
internal static class Rates
{
    /// <summary>Calls of every entry point (cfree is already counted as a free).</summary>
    public static ulong Calls(ProcessStats s)
    {
        ulong n = 0;
        for (int c = StatsLayout.MallocCalls; c <= StatsLayout.UsableSizeCalls; c++) n += s[c];
        return n;
    }

    /// <summary>Seconds since the process started (its start time against /proc/uptime), or null.</summary>
    public static double? AgeSeconds(ProcessStats s)
    {
        try
        {
            string uptime = File.ReadAllText("/proc/uptime").Split(' ')[0];
            double now = double.Parse(uptime, System.Globalization.CultureInfo.InvariantCulture);
            return Math.Max(0, now - s.StartTime / (double)ClockTicksPerSecond);
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>USER_HZ: 100 on every Linux architecture that .NET runs on.</summary>
    public const int ClockTicksPerSecond = 100;

    /// <summary>Per second between two readings of one incarnation; since start when there is no earlier reading.</summary>
    public static double PerSecond(ulong before, ulong after, double seconds) =>
        seconds <= 0 || after < before ? 0 : (after - before) / seconds;

    public static string Age(double? seconds)
    {
        if (seconds is not double s) return "?";
        if (s < 60) return $"{s:0}s";
        if (s < 3600) return $"{(int)(s / 60)}m{(int)(s % 60):00}s";
        if (s < 86400) return $"{(int)(s / 3600)}h{(int)(s % 3600 / 60):00}m";
        return $"{(int)(s / 86400)}d{(int)(s % 86400 / 3600):00}h";
    }

    public static string Rate(double perSecond) =>
        perSecond < 1000 ? perSecond.ToString("0", System.Globalization.CultureInfo.InvariantCulture)
        : perSecond < 1e6 ? (perSecond / 1e3).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "k"
        : (perSecond / 1e6).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "M";
}
