namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// The bytes a block with a given id must hold: byte i is Table[(offset(id) + i) mod P] for a
/// fixed pseudo-random table of prime length P. Distinct ids start at distinct offsets, so a
/// block that shows another block's bytes (an overlap, or a copy from the wrong place) is caught,
/// and filling or checking is a few span copies or compares, not a loop over bytes.
/// </summary>
internal static unsafe class BytePattern
{
    private const int Period = 65521;
    // Twice the period, so that any Period-long window is contiguous.
    private static readonly byte[] s_table = BuildTable();

    public static void Fill(nint payload, ulong from, ulong to, int id)
    {
        var destination = Window(payload, from, to);
        int offset = Offset(id, from);
        while (destination.Length > 0)
        {
            int n = Math.Min(destination.Length, Period);
            s_table.AsSpan(offset, n).CopyTo(destination);
            destination = destination[n..];
        }
    }

    /// <summary>The index of the first byte in [from, to) that is not the pattern's, or -1.</summary>
    public static long FirstMismatch(nint payload, ulong from, ulong to, int id)
    {
        var actual = Window(payload, from, to);
        int offset = Offset(id, from);
        long index = (long)from;
        while (actual.Length > 0)
        {
            int n = Math.Min(actual.Length, Period);
            var expected = s_table.AsSpan(offset, n);
            int differ = actual[..n].CommonPrefixLength(expected);
            if (differ < n)
                return index + differ;
            actual = actual[n..];
            index += n;
        }
        return -1;
    }

    public static byte Expected(int id, ulong index) => s_table[Offset(id, index)];

    private static Span<byte> Window(nint payload, ulong from, ulong to) =>
        new((byte*)payload + from, checked((int)(to - from)));

    private static int Offset(int id, ulong index) => (int)(((ulong)(uint)id * 7919 + index) % Period);

    private static byte[] BuildTable()
    {
        var table = new byte[2 * Period];
        new Random(0x6b6f6e66).NextBytes(table.AsSpan(0, Period));
        table.AsSpan(0, Period).CopyTo(table.AsSpan(Period));
        return table;
    }
}
