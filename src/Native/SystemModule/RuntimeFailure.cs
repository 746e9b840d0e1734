// How the runtime helpers stop the process. They sit in the lowest layer, under
// Platform, so they do not use Platform's Fatal: the same one line on stderr
// ("konfiscator: internal: ...", one write(2) from a static buffer, no malloc),
// then abort(), with the two libc calls declared here.

using System.Runtime.InteropServices;
using System.Threading;

namespace Internal.Runtime.CompilerHelpers
{
    internal static unsafe class RuntimeFailure
    {
        private const int Capacity = 128;
        private struct LineBuffer { public fixed byte Bytes[Capacity]; }
#pragma warning disable CS0169 // only ever used through `fixed`, which the compiler does not count
        private static LineBuffer s_line;
#pragma warning restore CS0169
        private static int s_dying;

        [DllImport("libc", EntryPoint = "write")] private static extern nint Write(int fd, void* buf, nuint count);
        [DllImport("libc", EntryPoint = "abort")] private static extern void Abort();

        /// <summary>Writes "konfiscator: internal: <paramref name="what"/>" and aborts.</summary>
        public static void Die(string what)
        {
            // A second thread failing at the same moment must not garble the first one's
            // line in the shared buffer; it aborts straight away, as Platform's Fatal does.
            if (Interlocked.Exchange(ref s_dying, 1) != 0) Abort();
            fixed (byte* line = s_line.Bytes)
            {
                int n = Append(line, 0, "konfiscator: internal: ");
                n = Append(line, n, what);
                line[n++] = (byte)'\n';
                Write(2, line, (nuint)n);
            }
            Abort();
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
    }
}
