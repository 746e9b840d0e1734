using System.Diagnostics;
using System.Runtime.InteropServices;
using Konfiscator.Reader.Interop;

namespace Konfiscator.Tool.Commands;

/// <summary>What <c>run</c> does with SIGINT, SIGTERM, SIGHUP and SIGQUIT: before the command
/// starts they are remembered and delivered once it runs; while it runs they are forwarded to it
/// (except keyboard signals the terminal already sent to its process group); after it ended they
/// stop the tool (<see cref="Stopped"/>).</summary>
internal sealed class SignalRelay : IDisposable
{
    private readonly object _gate = new();
    private readonly bool _keyboardReachesChild = Signals.KeyboardSignalsReachChild();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Signals _signals;
    private Process? _running;
    private int _pending;
    private bool _ended;

    public SignalRelay() => _signals = new Signals(OnSignal);

    /// <summary>Completes on the first signal after the command ended.</summary>
    public Task Stopped => _stopped.Task;

    public void Started(Process child)
    {
        lock (_gate)
        {
            _running = child;
            if (_pending != 0) Libc.Kill(child.Id, _pending);
        }
    }

    public void Ended()
    {
        lock (_gate)
        {
            _running = null;
            _ended = true;
        }
    }

    private void OnSignal(PosixSignal signal)
    {
        lock (_gate)
        {
            if (_ended)
            {
                _stopped.TrySetResult();
                return;
            }
            if (_keyboardReachesChild && signal is PosixSignal.SIGINT or PosixSignal.SIGQUIT) return;
            if (_running is null) _pending = Signals.Number(signal);
            else Libc.Kill(_running.Id, Signals.Number(signal));
        }
    }

    public void Dispose() => _signals.Dispose();
}
