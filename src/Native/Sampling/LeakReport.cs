// KONFISCATOR_LEAKS: at exit, the sampled blocks still live, by stack, in a few
// lines. "1" writes them to stderr, any other value except "0" names a file they
// are appended to (every preloaded process of a tree appends its own report).
//
//   konfiscator: leaks: 812 sampled blocks live at exit stand for ~10485760 bytes in ~40960 blocks (mean 524288)
//   konfiscator: leak: ~10485760 bytes in ~40960 blocks at /usr/bin/prog+0x1189 /usr/lib/x86_64-linux-gnu/libc.so.6+0x2724a ...
//
// Frames are return addresses as module+offset (file addresses: subtract one
// for the call instruction); `konfiscator run` symbolizes its own child's.
// The library never symbolizes. Lines are built in a static buffer and written
// with write(2); the only memory taken is one mapping for the per-stack sums.

using Konfiscator.Native.Platform;
using Konfiscator.Native.Stats;
using Konfiscator.Stats;

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class LeakReport
    {
        private const int TopStacks = 10;
        private const int FramesPerLine = 24;
        private const int LineCapacity = 8192;
        private const int PathCapacity = 512;

        private struct Buffers
        {
            public fixed byte Line[LineCapacity];
            public fixed byte Path[PathCapacity];
        }
#pragma warning disable CS0169 // only ever used through `fixed`
        private static Buffers s_buffers;
#pragma warning restore CS0169
        private static int s_mode; // 0 off, 1 stderr, 2 file

        public static void Configure()
        {
            byte* value = Settings.Get(StatsSchema.LeaksVariable);
            if (value == null || *value == 0 || TextBuffer.Equals(value, "0")) return;
            if (TextBuffer.Equals(value, "1")) { s_mode = 1; return; }
            fixed (byte* path = s_buffers.Path)
            {
                var p = new TextBuffer(path, PathCapacity);
                p.AppendCString(value);
                s_mode = p.Complete ? 2 : 1;
            }
        }

        public static void WriteIfAsked(ulong mean)
        {
            if (s_mode == 0 || !SampleTables.Ready) return;
            int fd = 2;
            if (s_mode == 2)
            {
                fixed (byte* path = s_buffers.Path)
                    fd = Libc.open(path, O_WRONLY | Libc.O_CREAT | O_APPEND | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0x180);
                if (fd < 0) return;
            }
            SampleTables.Lock();
            Write(fd, mean);
            SampleTables.Unlock();
            if (fd != 2) Libc.close(fd);
        }

        private const int O_APPEND = 0x400, O_WRONLY = 1;
        private const uint None = 0xFFFFFFFF;

        private static void Write(int fd, ulong mean)
        {
            fixed (byte* bytes = s_buffers.Line)
            {
                var line = new TextBuffer(bytes, LineCapacity);
                if (mean == 0 || SampleTables.State != SampleLayout.StateOn)
                {
                    line.Append("konfiscator: leaks: sampling is off (");
                    if (mean == 0) { line.Append(StatsSchema.SampleBytesVariable); line.Append("=0"); }
                    else line.Append("no unwinder");
                    line.Append("); nothing to report\n");
                    Libc.write(fd, bytes, (nuint)line.Length);
                    return;
                }
                byte* h = SampleTables.Private;
                uint stacks = *(uint*)(h + SampleLayout.OffStacksUsed);
                uint highWater = *(uint*)(h + SampleLayout.OffSamplesHighWater);
                // Per stack (and one more for the unknown stack): bytes, blocks, samples.
                nuint scratchBytes = ((nuint)(stacks + 1) * 24 + 4095) & ~(nuint)4095;
                void* map = Libc.mmap(null, scratchBytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
                if (map == Libc.MAP_FAILED) return;
                double* sumBytes = (double*)map;
                double* sumBlocks = sumBytes + stacks + 1;
                ulong* count = (ulong*)(sumBlocks + stacks + 1);
                double totalBytes = 0, totalBlocks = 0;
                ulong samples = 0;
                for (uint slot = 0; slot < highWater; slot++)
                {
                    byte* e = h + SampleLayout.SamplesOffset + (long)slot * SampleLayout.SampleEntryBytes;
                    if (*(ulong*)(e + SampleLayout.SampleAddress) == 0) continue;
                    ulong size = *(ulong*)(e + SampleLayout.SampleSize);
                    uint stack = *(uint*)(e + SampleLayout.SampleStack);
                    uint at = stack < stacks ? stack : stacks;
                    double w = SampleMath.WeightBytes(size, mean);
                    double blocks = size == 0 ? 1 : w / size;
                    sumBytes[at] += w;
                    sumBlocks[at] += blocks;
                    count[at]++;
                    totalBytes += w;
                    totalBlocks += blocks;
                    samples++;
                }
                line.Append("konfiscator: leaks: ");
                if (samples == 0)
                {
                    line.Append("no sampled block is live at exit (mean ");
                    line.Append(mean);
                    line.Append(" bytes)\n");
                    Libc.write(fd, bytes, (nuint)line.Length);
                    Libc.munmap(map, scratchBytes);
                    return;
                }
                line.Append(samples);
                line.Append(" sampled blocks live at exit stand for ~");
                line.Append((ulong)totalBytes);
                line.Append(" bytes in ~");
                line.Append((ulong)totalBlocks);
                line.Append(" blocks (mean ");
                line.Append(mean);
                line.Append(")\n");
                Libc.write(fd, bytes, (nuint)line.Length);
                for (int rank = 0; rank < TopStacks; rank++)
                {
                    // The largest remaining stack (a selection: few lines, few stacks).
                    uint best = None;
                    for (uint s = 0; s <= stacks; s++)
                        if (count[s] != 0 && (best == None || sumBytes[s] > sumBytes[best])) best = s;
                    if (best == None) break;
                    line.Truncate(0);
                    line.Append("konfiscator: leak: ~");
                    line.Append((ulong)sumBytes[best]);
                    line.Append(" bytes in ~");
                    line.Append((ulong)sumBlocks[best]);
                    line.Append(" blocks at");
                    if (best == stacks) line.Append(" [stack unknown: stack table full]");
                    else AppendStack(ref line, h, best);
                    line.Append("\n");
                    Libc.write(fd, bytes, (nuint)line.Length);
                    count[best] = 0;
                }
                Libc.munmap(map, scratchBytes);
            }
        }

        private static void AppendStack(ref TextBuffer line, byte* h, uint stack)
        {
            byte* s = h + SampleLayout.StacksOffset + (long)stack * SampleLayout.StackEntryBytes;
            uint depth = *(uint*)(s + SampleLayout.StackDepth);
            ulong* frames = (ulong*)(s + SampleLayout.StackFrames);
            uint modules = *(uint*)(h + SampleLayout.OffModulesUsed);
            for (uint i = 0; i < depth && i < FramesPerLine; i++)
            {
                ulong ip = frames[i];
                line.Append((byte)' ');
                byte* m = null;
                // The newest object that covers the address (an unloaded one's range may be reused).
                for (uint k = modules; k-- > 0; )
                {
                    byte* candidate = h + SampleLayout.ModulesOffset + (long)k * SampleLayout.ModuleEntryBytes;
                    if (ip >= *(ulong*)(candidate + SampleLayout.ModuleStart) && ip < *(ulong*)(candidate + SampleLayout.ModuleEnd))
                    {
                        m = candidate;
                        break;
                    }
                }
                if (m == null)
                {
                    line.AppendHex(ip);
                    continue;
                }
                uint length = *(uint*)(m + SampleLayout.ModulePathLength);
                byte* path = m + SampleLayout.ModulePath;
                for (uint c = 0; c < length; c++) line.Append(path[c] == (byte)' ' ? (byte)'?' : path[c]);
                line.Append((byte)'+');
                line.AppendHex(ip - *(ulong*)(m + SampleLayout.ModuleBase));
            }
        }
    }
}
