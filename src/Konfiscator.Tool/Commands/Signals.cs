using System.Runtime.InteropServices;
using Konfiscator.Reader.Interop;

namespace Konfiscator.Tool.Commands;

/// <summary>Takes SIGINT, SIGTERM, SIGHUP and SIGQUIT away from the runtime's default (terminate)
/// and hands them to <see cref="Handler"/>.</summary>
internal sealed class Signals : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];

    public static readonly PosixSignal[] Handled = [PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT];

    public Signals(Action<PosixSignal> handler)
    {
        Handler = handler;
        foreach (var signal in Handled)
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                Handler(context.Signal);
            }));
    }

    public Action<PosixSignal> Handler { get; set; }

    /// <summary>The Linux number of a signal (PosixSignal values are negative placeholders).</summary>
    public static int Number(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGHUP => 1,
        PosixSignal.SIGINT => 2,
        PosixSignal.SIGQUIT => 3,
        PosixSignal.SIGTERM => 15,
        _ => (int)signal,
    };

    /// <summary>True when the terminal itself sends keyboard signals (Ctrl-C, Ctrl-\) to our process
    /// group, and so to a child in it too: such a signal must not be forwarded a second time.</summary>
    public static bool KeyboardSignalsReachChild()
    {
        for (int fd = 0; fd <= 2; fd++)
        {
            if (Libc.IsATty(fd) == 1)
                return Libc.TcGetPgrp(fd) == Libc.GetPgrp();
        }
        return false;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}
