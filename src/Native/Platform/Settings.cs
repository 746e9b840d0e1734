// Environment settings, read with getenv (which does not allocate).

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Settings
    {
        private struct NameBuffer { public fixed byte Bytes[64]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static NameBuffer s_name;
#pragma warning restore CS0169

        /// <summary>The variable's value, or null when unset. Start-up only (one shared buffer).</summary>
        public static byte* Get(string name)
        {
            fixed (byte* text = s_name.Bytes)
            {
                var b = new TextBuffer(text, 64);
                b.Append(name);
                return b.Complete ? Libc.getenv(text) : null;
            }
        }

        /// <summary>True when the variable is set to "0".</summary>
        public static bool IsOff(string name)
        {
            byte* value = Get(name);
            return value != null && TextBuffer.Equals(value, "0");
        }
    }
}
