// Environment settings, read with getenv (which does not allocate).
//
// Secure processes (setuid, setgid, file capabilities: the kernel sets AT_SECURE)
// ignore every KONFISCATOR_* setting, as secure_getenv would: the user who runs
// them is not the user they run as, so the user's environment must not choose
// where a privileged process writes. Such processes publish nothing either
// (SegmentFile.PublishingEnabled).
//
// Switches accept 0/1, off/on, false/true, no/yes in any case; empty means unset.
// Anything else leaves the default in place and says so in one line on stderr:
// a bad setting never stops a program.

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Settings
    {
        private struct NameBuffer { public fixed byte Bytes[64]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static NameBuffer s_name;
#pragma warning restore CS0169
        private static int s_secure = -1; // -1: not asked yet

        /// <summary>True in a setuid/setgid (AT_SECURE) process: settings are ignored and nothing is published.</summary>
        public static bool IsSecure
        {
            get
            {
                if (s_secure < 0) s_secure = Libc.getauxval(Libc.AT_SECURE) != 0 ? 1 : 0;
                return s_secure != 0;
            }
        }

        /// <summary>The variable's value, or null when unset or in a secure process. Start-up only (one shared buffer).</summary>
        public static byte* Get(string name)
        {
            if (IsSecure) return null;
            fixed (byte* text = s_name.Bytes)
            {
                var b = new TextBuffer(text, 64);
                b.Append(name);
                return b.Complete ? Libc.getenv(text) : null;
            }
        }

        /// <summary>True when the switch (on by default) is turned off.</summary>
        public static bool IsOff(string name) => !IsOn(name, defaultValue: true);

        /// <summary>The switch's value; <paramref name="defaultValue"/> when unset, empty or not
        /// understood (then one line on stderr says so).</summary>
        public static bool IsOn(string name, bool defaultValue)
        {
            byte* value = Get(name);
            if (value == null || *value == 0) return defaultValue;
            if (Is(value, "1") || Is(value, "on") || Is(value, "true") || Is(value, "yes")) return true;
            if (Is(value, "0") || Is(value, "off") || Is(value, "false") || Is(value, "no")) return false;

            var line = Notice.Begin();
            line.Append(name);
            line.Append((byte)'=');
            Notice.AppendQuoted(ref line, value);
            line.Append(" not understood (use 0/1, off/on, false/true or no/yes); using the default, ");
            line.Append(defaultValue ? "on" : "off");
            Notice.Send(ref line);
            return defaultValue;
        }

        /// <summary>ASCII case-insensitive equality with a lower-case word.</summary>
        private static bool Is(byte* value, string word)
        {
            fixed (char* w = word)
            {
                int i = 0;
                for (; i < word.Length; i++)
                {
                    byte c = value[i];
                    if (c >= (byte)'A' && c <= (byte)'Z') c = (byte)(c + 32);
                    if (c != (byte)w[i]) return false;
                }
                return value[i] == 0;
            }
        }
    }
}
