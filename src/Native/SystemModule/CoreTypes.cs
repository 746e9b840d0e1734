// The minimal core library that libkonfiscator.so is compiled against.
//
// ILC compiles this assembly as the system module: these are *the* System.Object,
// System.Int32 and so on for the native library. Only what the compiler and the
// allocator's own code need is here. Anything that would need a runtime (object
// allocation, exceptions, a GC) has no implementation, so using it fails the
// build instead of failing inside someone's process.

#pragma warning disable CS0169, CS0649, CS0660, CS0661, CA1822, IDE0051

namespace System
{
    public class Object
    {
        // The object layout is a contract with the compiler: a method table pointer first.
        private IntPtr m_pEEType;
    }

    public struct Void { }
    public struct Boolean { }
    public struct Char { }
    public struct SByte { }
    public struct Byte { }
    public struct Int16 { }
    public struct UInt16 { }
    public struct Int32 { }
    public struct UInt32 { }
    public struct Int64 { }
    public struct UInt64 { }
    public struct IntPtr { }
    public struct UIntPtr { }
    public struct Single { }
    public struct Double { }

    public abstract class ValueType { }
    public abstract class Enum : ValueType { }
    public struct Nullable<T> where T : struct { }

    public sealed class String
    {
        // Layout contract with the compiler: length, then the first character.
        public readonly int Length;
        private char _firstChar;
    }

    public abstract class Array { }
    public abstract class Delegate { }
    public abstract class MulticastDelegate : Delegate { }

    public struct RuntimeTypeHandle { }
    public struct RuntimeMethodHandle { }
    public struct RuntimeFieldHandle { }

    public abstract class Type { }

    public class Attribute { }

    [Flags]
    public enum AttributeTargets
    {
        Assembly = 0x0001, Module = 0x0002, Class = 0x0004, Struct = 0x0008,
        Enum = 0x0010, Constructor = 0x0020, Method = 0x0040, Property = 0x0080,
        Field = 0x0100, Event = 0x0200, Interface = 0x0400, Parameter = 0x0800,
        Delegate = 0x1000, ReturnValue = 0x2000, GenericParameter = 0x4000, All = 0x7FFF,
    }

    public sealed class AttributeUsageAttribute : Attribute
    {
        public AttributeUsageAttribute(AttributeTargets validOn) { }
        public bool AllowMultiple { get; set; }
        public bool Inherited { get; set; }
    }

    public sealed class FlagsAttribute : Attribute { }
    public sealed class ParamArrayAttribute : Attribute { }
    public sealed class ObsoleteAttribute : Attribute { }

    public interface IDisposable { void Dispose(); }
}

namespace System.Runtime.CompilerServices
{
    public static class RuntimeHelpers
    {
        public static unsafe int OffsetToStringData => sizeof(IntPtr) + sizeof(int);
    }

    public static class RuntimeFeature
    {
        // Lets UnmanagedCallersOnly methods be used through `delegate* unmanaged`.
        public const string UnmanagedSignatureCallingConvention = nameof(UnmanagedSignatureCallingConvention);
    }

    public sealed class IsUnmanagedAttribute : Attribute { }
    public sealed class IsReadOnlyAttribute : Attribute { }
    public sealed class IsByRefLikeAttribute : Attribute { }
    public sealed class IsVolatile { }
    public sealed class ExtensionAttribute : Attribute { }
    public sealed class FixedBufferAttribute : Attribute
    {
        public FixedBufferAttribute(Type elementType, int length) { }
    }
    public sealed class CompilerGeneratedAttribute : Attribute { }
    public sealed class IntrinsicAttribute : Attribute { }

    public enum MethodImplOptions
    {
        NoInlining = 0x0008,
        InternalCall = 0x1000,
        NoOptimization = 0x0040,
        AggressiveInlining = 0x0100,
        AggressiveOptimization = 0x0200,
    }

    public sealed class MethodImplAttribute : Attribute
    {
        public MethodImplAttribute(MethodImplOptions options) { }
    }

    public sealed class SkipLocalsInitAttribute : Attribute { }
    public sealed class CallConvCdecl { }
    public sealed class CallConvSuppressGCTransition { }
}

namespace System.Runtime.InteropServices
{
    public enum LayoutKind { Sequential = 0, Explicit = 2, Auto = 3 }
    public enum CharSet { None = 1, Ansi = 2, Unicode = 3, Auto = 4 }
    public enum CallingConvention { Winapi = 1, Cdecl = 2, StdCall = 3, ThisCall = 4, FastCall = 5 }

    public sealed class StructLayoutAttribute : Attribute
    {
        public StructLayoutAttribute(LayoutKind layoutKind) { }
        public int Size;
        public int Pack;
    }

    public sealed class FieldOffsetAttribute : Attribute
    {
        public FieldOffsetAttribute(int offset) { }
    }

    public sealed class DllImportAttribute : Attribute
    {
        public string EntryPoint;
        public CharSet CharSet;
        public bool SetLastError;
        public bool ExactSpelling;
        public CallingConvention CallingConvention;
        public DllImportAttribute(string dllName) { }
    }

    public sealed class UnmanagedCallersOnlyAttribute : Attribute
    {
        public string EntryPoint;
        public Type[] CallConvs;
    }

    public sealed class SuppressGCTransitionAttribute : Attribute { }

    // Needed by the `unmanaged` generic constraint.
    public enum UnmanagedType { }

    // ILC looks this type and method up by name; nothing here ever implements it.
    public static class IDynamicInterfaceCastable
    {
        internal static RuntimeTypeHandle GetDynamicInterfaceImplementation(object instance, RuntimeTypeHandle interfaceType)
        {
            return default;
        }
    }
}

namespace System.Runtime
{
    // Makes a static method an exported symbol with no transition code.
    internal sealed class RuntimeExportAttribute : Attribute
    {
        public RuntimeExportAttribute(string entry) { }
    }

    internal sealed class RuntimeImportAttribute : Attribute
    {
        public RuntimeImportAttribute(string entry) { }
        public RuntimeImportAttribute(string lib, string entry) { }
    }
}

namespace System
{
    // The JIT asks for this type by name when it needs a type handle's class.
    internal sealed class RuntimeType : Type { }
}
