using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>
/// Issue 8, case 5: dlclose of the library while a thread that allocated through it is alive,
/// then that thread exits: its key destructor is the library's code, so the library must stay
/// mapped (it is linked with -z nodelete). Run without LD_PRELOAD: the program loads the
/// library itself.
/// </summary>
public sealed class DlcloseThreadTests
{
    [Fact]
    public void A_thread_exits_after_the_library_was_closed()
    {
        var result = ChildProcess.Run(TrialPrograms.Get("dlclose_thread"), [RepoPaths.RequireLibrary()]);
        result.AssertSucceeded();
        Assert.Equal("ok", result.StdoutText.Trim());
    }
}
