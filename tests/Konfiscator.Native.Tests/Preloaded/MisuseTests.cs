using System.Globalization;
using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>
/// tests/native/misuse.c: a call on a pointer that is not a live block must stop the process
/// with SIGABRT and one line on stderr, "konfiscator: CALL(): WHAT (ptr=0x...)", naming the call
/// that was made and the very pointer the program passed (docs/heap.md, "Errors").
/// </summary>
public sealed partial class MisuseTests
{
    private const string DoubleFree = "double free";
    private const string InvalidPointer = "invalid pointer";
    private const string CorruptedHeader = "corrupted block header";
    private const string AlreadyFreed = "pointer already freed";
    private const string CorruptedFreeList = "corrupted free list";

    public static TheoryData<string, string, string[]> Cases => new()
    {
        { "double-free", "free", [DoubleFree] },
        { "aligned-double-free", "free", [DoubleFree] },
        // Freed twice on a thread whose arena did not make it: the first free sent it
        // into that thread's foreign chain (docs/heap.md, "Thread caches").
        { "foreign-double-free", "free", [DoubleFree] },
        { "cfree-after-free", "cfree", [DoubleFree] },
        { "free-stack", "free", [InvalidPointer] },
        { "free-static", "free", [InvalidPointer] },
        // Above the heap, in its arena's reserved address space, which reads as zeros: the free
        // fast path reads the header there without the page map (Api/Exports.cs).
        { "free-reserved", "free", [InvalidPointer] },
        // A block of a region that went back to the reservation (read as zeros there).
        { "free-returned-region", "free", [InvalidPointer] },
        // Not 16-byte aligned: cannot be a payload at all.
        { "free-interior", "free", [InvalidPointer] },
        { "overwritten-header", "free", [CorruptedHeader] },
        // docs/heap.md: a check mismatch means "the header was overwritten (or the pointer is
        // not a block)", so for an aligned pointer into a block's payload either line is right.
        { "free-interior-aligned", "free", [InvalidPointer, CorruptedHeader] },
        // Above the sizes the thread caches take (32 KiB), a free goes straight into the heap by
        // a path of its own (Api/Release.cs, FreeToHeap): the same checks, the same lines.
        { "heap-double-free", "free", [DoubleFree] },
        { "heap-overwritten-header", "free", [CorruptedHeader] },
        { "heap-overwritten-check", "free", [CorruptedHeader] },
        { "heap-free-interior-aligned", "free", [InvalidPointer, CorruptedHeader] },
        // 1-32 KiB blocks a thread frees are held back (Heap/ThreadCache.Classes.cs): freed
        // again, or written into and then taken back by malloc.
        { "held-double-free", "free", [DoubleFree] },
        { "held-overwritten-header", "malloc", [CorruptedFreeList] },
        // The mapping is gone after the first free, so the library may no longer know the
        // pointer was one of its blocks; it must still stop cleanly, not fault.
        { "large-double-free", "free", [DoubleFree, InvalidPointer] },
        // "A freed pointer passed to realloc or malloc_usable_size is reported as pointer already freed."
        { "realloc-after-free", "realloc", [AlreadyFreed] },
        { "usable-size-after-free", "malloc_usable_size", [AlreadyFreed] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Misuse_AbortsWithOneLineNamingTheCallAndThePointer(string mode, string call, string[] allowed)
    {
        var run = Preload.Run(NativePrograms.Instance.Misuse, [mode]);
        var result = run.Result;

        Assert.True(result.KilledBy(ChildResult.SIGABRT),
            $"`misuse {mode}` must end with SIGABRT (exit code {ChildResult.SignalExitBase + ChildResult.SIGABRT} as .NET reports it)\n{result.Describe()}");

        var announced = AnnouncedPointer().Match(result.StdoutText);
        Assert.True(announced.Success, $"the program did not print the pointer it passed\n{result.Describe()}");
        ulong pointer = ulong.Parse(announced.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var ours = lines.Where(l => l.StartsWith("konfiscator:", StringComparison.Ordinal)).ToList();
        Assert.True(ours.Count == 1, $"expected exactly one line from the library on stderr\n{result.Describe()}");

        var message = Message().Match(ours[0]);
        Assert.True(message.Success, $"the line does not have the form `konfiscator: CALL(): WHAT (ptr=0x...)`: {ours[0]}");
        Assert.Equal(call, message.Groups["call"].Value);
        Assert.True(allowed.Contains(message.Groups["what"].Value),
            $"`misuse {mode}`: expected one of [{string.Join(" | ", allowed)}], got: {ours[0]}");
        ulong reported = ulong.Parse(message.Groups["ptr"].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Assert.True(reported == pointer, $"the line names ptr=0x{reported:x}, the program passed 0x{pointer:x}: {ours[0]}");
    }

    [GeneratedRegex(@"^ptr=0x([0-9a-f]+)$", RegexOptions.Multiline)]
    private static partial Regex AnnouncedPointer();

    [GeneratedRegex(@"^konfiscator: (?<call>[a-z_]+)\(\): (?<what>.+) \(ptr=0x(?<ptr>[0-9a-f]+)\)$")]
    private static partial Regex Message();
}
