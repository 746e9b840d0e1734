// One line on stderr that does not stop the process, for settings the library
// ignores and for publishing it gives up:
//   konfiscator: KONFISCATOR_TCACHE=banana not understood (...); using the default, on
// Built in a static buffer (no malloc) and sent with one write(2). Callers run
// at start-up, in a fork child or under the stats slot lock: never two at once.

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Notice
    {
        private const int Capacity = 512;
        private const int QuotedMax = 200;
        private struct LineBuffer { public fixed byte Bytes[Capacity]; }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static LineBuffer s_line;
#pragma warning restore CS0169

        /// <summary>A line that starts with "konfiscator: "; finish it with <see cref="Send"/>.</summary>
        public static TextBuffer Begin()
        {
            // One byte is kept back for the newline Send adds.
            fixed (byte* line = s_line.Bytes)
            {
                var b = new TextBuffer(line, Capacity - 1);
                b.Append("konfiscator: ");
                return b;
            }
        }

        public static void Send(ref TextBuffer line)
        {
            byte* bytes = line.Pointer;
            int n = line.Length;
            bytes[n] = (byte)'\n';
            Libc.write(2, bytes, (nuint)(n + 1));
        }

        /// <summary>Text from outside (a variable's value, a path) as one printable line:
        /// control bytes become '?', and a long text is cut with "...".</summary>
        public static void AppendQuoted(ref TextBuffer line, byte* text)
        {
            int i = 0;
            for (; text[i] != 0 && i < QuotedMax; i++)
            {
                byte c = text[i];
                line.Append(c < 0x20 || c == 0x7F ? (byte)'?' : c);
            }
            if (text[i] != 0) line.Append("...");
        }

        /// <summary>What an errno means, in the words of strerror (which may allocate, so not called).</summary>
        public static void AppendError(ref TextBuffer line, int errno)
        {
            switch (errno)
            {
                case Libc.ENOENT: line.Append("no such file or directory"); break;
                case Libc.ENOTDIR: line.Append("not a directory"); break;
                case Libc.EACCES: line.Append("permission denied"); break;
                case Libc.EPERM: line.Append("operation not permitted"); break;
                case Libc.ENOSPC: line.Append("no space left on device"); break;
                case Libc.EDQUOT: line.Append("disk quota exceeded"); break;
                case Libc.EROFS: line.Append("read-only file system"); break;
                case Libc.ELOOP: line.Append("too many levels of symbolic links"); break;
                case Libc.ENOMEM: line.Append("out of memory"); break;
                default: line.Append("error "); line.Append((ulong)errno); break;
            }
        }

        public static void AppendOctal(ref TextBuffer line, uint value)
        {
            line.Append((byte)'0');
            for (int shift = 6; shift >= 0; shift -= 3)
                line.Append((byte)('0' + ((value >> shift) & 7)));
        }
    }
}
