using System.Globalization;

namespace Konfiscator.Tool.Output;

/// <summary>A process's age from its start time (clock ticks after boot, as /proc/PID/stat and the
/// segment header give it) and the system's uptime (/proc/uptime).</summary>
internal static class Uptime
{
    /// <summary>USER_HZ: the unit of /proc's clock ticks, 100 on every Linux the library runs on.</summary>
    private const double TicksPerSecond = 100;

    public static TimeSpan? Since(ulong startTicks)
    {
        try
        {
            string text = File.ReadAllText("/proc/uptime");
            string first = text.Split(' ', 2)[0];
            if (!double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out double up)) return null;
            double age = up - startTicks / TicksPerSecond;
            return TimeSpan.FromSeconds(Math.Max(0, age));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>"0.4 s", "12 s", "3 min 12 s", "2 h 5 min", "3 d 4 h".</summary>
    public static string Describe(TimeSpan t) => t.TotalSeconds switch
    {
        < 10 => $"{t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s",
        < 60 => $"{(int)t.TotalSeconds} s",
        < 3600 => $"{t.Minutes} min {t.Seconds} s",
        < 86400 => $"{t.Hours} h {t.Minutes} min",
        _ => $"{(int)t.TotalDays} d {t.Hours} h",
    };
}
