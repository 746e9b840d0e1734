// Helpers that ILC looks up by name and refuses to compile without.
//
// Most of them exist for features this library never uses (casts, arrays of
// references, exceptions). If one is ever reached it can only mean a bug, so
// each one stops the process with a message instead of pretending to work.

using System;
using System.Runtime;
using Internal.Runtime.CompilerHelpers;

#pragma warning disable IDE0060, CA1822

namespace Internal.Runtime.CompilerHelpers
{
    internal static class StartupCodeHelpers
    {
        // There is no GC, so entering and leaving managed code needs no bookkeeping:
        // these transitions are deliberately empty.
        [RuntimeExport("RhpReversePInvoke")]
        private static void RhpReversePInvoke(IntPtr frame) { }

        [RuntimeExport("RhpReversePInvokeReturn")]
        private static void RhpReversePInvokeReturn(IntPtr frame) { }

        [RuntimeExport("RhpPInvoke")]
        private static void RhpPInvoke(IntPtr frame) { }

        [RuntimeExport("RhpPInvokeReturn")]
        private static void RhpPInvokeReturn(IntPtr frame) { }

        // Called after a [SuppressGCTransition] call only if RhpTrapThreads is set,
        // which nothing ever does.
        [RuntimeExport("RhpGcPoll")]
        private static void RhpGcPoll() { }

        [RuntimeExport("RhpFallbackFailFast")]
        private static void RhpFallbackFailFast() => RuntimeFailure.Die("fallback fail-fast reached");
    }

    internal static class ThrowHelpers
    {
        private static void ThrowOverflowException() => RuntimeFailure.Die("arithmetic overflow");
        private static void ThrowIndexOutOfRangeException() => RuntimeFailure.Die("index out of range");
        private static void ThrowNullReferenceException() => RuntimeFailure.Die("null reference");
        private static void ThrowDivideByZeroException() => RuntimeFailure.Die("divide by zero");
        private static void ThrowArrayTypeMismatchException() => RuntimeFailure.Die("array type mismatch");
        private static void ThrowPlatformNotSupportedException() => RuntimeFailure.Die("platform not supported");
        private static void ThrowTypeLoadException() => RuntimeFailure.Die("type load");
        private static void ThrowArgumentException() => RuntimeFailure.Die("bad argument");
        private static void ThrowArgumentOutOfRangeException() => RuntimeFailure.Die("argument out of range");
        private static void ThrowInvalidProgramException() => RuntimeFailure.Die("invalid program");
        private static void ThrowFeatureBodyRemoved() => RuntimeFailure.Die("feature body removed");
    }

    internal static class InteropHelpers
    {
        // Only reached for a P/Invoke that is not a direct call: none should exist.
        private static unsafe IntPtr ResolvePInvoke(IntPtr cell)
        {
            RuntimeFailure.Die("lazy P/Invoke resolution requested");
            return default;
        }
    }
}

namespace System
{
    internal static class Buffer
    {
        private static unsafe void BulkMoveWithWriteBarrier(ref byte destination, ref byte source, nuint byteCount)
            => RuntimeFailure.Die("managed reference copy");

        internal static unsafe void Memmove(ref byte destination, ref byte source, nuint byteCount)
            => RuntimeFailure.Die("managed memmove");
    }

    internal static class SpanHelpers
    {
        internal static unsafe void ClearWithoutReferences(ref byte b, nuint byteLength)
            => RuntimeFailure.Die("managed clear");

        internal static unsafe void ClearWithReferences(ref IntPtr ip, nuint pointerSizeLength)
            => RuntimeFailure.Die("managed clear of references");

        internal static unsafe void Memmove(ref byte destination, ref byte source, nuint byteCount)
            => RuntimeFailure.Die("managed memmove");

        internal static unsafe void Fill(ref byte destination, nuint count, byte value)
            => RuntimeFailure.Die("managed fill");
    }
}

namespace System.Runtime
{
    internal static class TypeCast
    {
        private static object Fail() { RuntimeFailure.Die("type cast"); return null; }
        private static object CheckCastAny(IntPtr type, object obj) => Fail();
        private static object CheckCastInterface(IntPtr type, object obj) => Fail();
        private static object CheckCastClass(IntPtr type, object obj) => Fail();
        private static object CheckCastClassSpecial(IntPtr type, object obj) => Fail();
        private static object IsInstanceOfAny(IntPtr type, object obj) => Fail();
        private static object IsInstanceOfInterface(IntPtr type, object obj) => Fail();
        private static object IsInstanceOfClass(IntPtr type, object obj) => Fail();
        private static object IsInstanceOfException(IntPtr type, object obj) => Fail();
    }
}
