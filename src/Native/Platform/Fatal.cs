// Stopping the process with one clear line, the way glibc reports heap misuse:
//   konfiscator: free(): double free (ptr=0x5581c0a3e2a0)
// The line is assembled in a static buffer (no malloc, no stack cookie) and sent
// with a single write(2), then abort() raises SIGABRT.

using System.Threading;

namespace Konfiscator.Native.Platform
{
    internal static unsafe class Fatal
    {
        private const int Capacity = 256;
        private struct LineBuffer { public fixed byte Bytes[Capacity]; }
        #pragma warning disable CS0169 // only ever used through `fixed`, which the compiler does not count
        private static LineBuffer s_line;
#pragma warning restore CS0169
        private static int s_dying;

        public static void Die(string message) => Report(null, message, null, false);

        /// <summary>Reports misuse of an API call on a pointer and aborts.</summary>
        public static void Misuse(string call, string problem, void* pointer) => Report(call, problem, pointer, true);

        private static void Report(string call, string problem, void* pointer, bool withPointer)
        {
            // A second thread failing at the same moment must not garble the first
            // one's line; it aborts straight away.
            if (Interlocked.Exchange(ref s_dying, 1) != 0)
                Libc.abort();

            fixed (byte* line = s_line.Bytes)
            {
                int n = 0;
                n = Append(line, n, "konfiscator: ");
                if (call != null)
                {
                    n = Append(line, n, call);
                    n = Append(line, n, "(): ");
                }
                n = Append(line, n, problem);
                if (withPointer)
                {
                    n = Append(line, n, " (ptr=");
                    n = AppendHex(line, n, (ulong)pointer);
                    n = Append(line, n, ")");
                }
                n = Append(line, n, "\n");
                Libc.write(2, line, (nuint)n);
            }
            Libc.abort();
        }

        private static int Append(byte* line, int n, string text)
        {
            // Messages are ASCII literals; each UTF-16 unit becomes one byte.
            fixed (char* chars = text)
            {
                for (int i = 0; i < text.Length && n < Capacity - 1; i++)
                    line[n++] = (byte)chars[i];
            }
            return n;
        }

        private static int AppendHex(byte* line, int n, ulong value)
        {
            n = Append(line, n, "0x");
            int digits = 1;
            for (ulong v = value >> 4; v != 0; v >>= 4) digits++;
            for (int i = digits - 1; i >= 0 && n < Capacity - 1; i--)
            {
                uint nibble = (uint)(value >> (i * 4)) & 0xF;
                line[n++] = (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
            }
            return n;
        }
    }
}
