namespace Konfiscator.Reader;

/// <summary>Is a process incarnation still running? Abstracted so the collector can be driven
/// by a fake in unit tests; the real one reads /proc.</summary>
public interface IProcessProbe
{
    /// <summary>True while the process <paramref name="pid"/> exists, has the given start time
    /// (clock ticks after boot, /proc/PID/stat field 22) and is not a zombie.</summary>
    bool IsRunning(int pid, ulong startTime);
}

/// <summary>Facts from /proc.</summary>
public sealed class ProcFs : IProcessProbe
{
    public static readonly ProcFs Instance = new();

    private readonly string _root;

    public ProcFs(string root = "/proc") => _root = root;

    public bool IsRunning(int pid, ulong startTime)
    {
        var stat = ReadStat(pid);
        return stat is { } s && s.StartTime == startTime && s.State is not ('Z' or 'X' or 'x');
    }

    /// <summary>State letter and start time of a process, or null when it does not exist.</summary>
    public (char State, ulong StartTime)? ReadStat(int pid)
    {
        if (pid <= 0) return null;
        string text;
        try
        {
            text = File.ReadAllText($"{_root}/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return ParseStat(text);
    }

    /// <summary>Parses the text of /proc/PID/stat. The command (field 2) is in parentheses and may
    /// itself contain spaces and parentheses, so fields are counted from the last ')'.</summary>
    public static (char State, ulong StartTime)? ParseStat(string text)
    {
        int close = text.LastIndexOf(')');
        if (close < 0) return null;
        var rest = text.AsSpan(close + 1).Trim();
        // rest starts at field 3 (state); field 22 (starttime) is the 20th from here.
        char state = '\0';
        int field = 3;
        foreach (var range in rest.Split(' '))
        {
            var token = rest[range];
            if (token.IsEmpty) continue;
            if (field == 3) state = token[0];
            if (field == 22)
                return ulong.TryParse(token, out ulong start) ? (state, start) : null;
            field++;
        }
        return null;
    }

    /// <summary>Start time of this process.</summary>
    public static ulong SelfStartTime() =>
        Instance.ReadStat(Environment.ProcessId)?.StartTime
        ?? throw new InvalidOperationException("cannot read /proc/self/stat");
}
