namespace Konfiscator.Tool;

/// <summary>Exit statuses of the tool itself. <c>run</c> otherwise exits with its command's
/// status (128 + the signal when a signal ended it), so its own failures use the values `env`
/// and shells use: 125 before the command could start, 126 not executable, 127 not found.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int RunFailure = 125;
    public const int CannotExecute = 126;
    public const int NotFound = 127;
}

/// <summary>A failure with a message for the user (no stack trace).</summary>
internal sealed class ToolException(string message, int exitCode = ExitCodes.Failure) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
