// Building short C strings (paths, numbers) without malloc, in caller-owned bytes.

namespace Konfiscator.Native.Platform
{
    internal unsafe struct TextBuffer
    {
        private readonly byte* _bytes;
        private readonly int _capacity;
        private int _length;

        public TextBuffer(byte* bytes, int capacity)
        {
            _bytes = bytes;
            _capacity = capacity;
            _length = 0;
            _cut = false;
            bytes[0] = 0;
        }

        public byte* Pointer => _bytes;
        public int Length => _length;
        /// <summary>False once anything was cut off: the text must not be used then.</summary>
        public bool Complete => !_cut;
        private bool _cut;

        public void Append(byte value)
        {
            if (_length + 1 >= _capacity) { _cut = true; return; }
            _bytes[_length++] = value;
            _bytes[_length] = 0;
        }

        public void Append(string ascii)
        {
            fixed (char* chars = ascii)
                for (int i = 0; i < ascii.Length; i++) Append((byte)chars[i]);
        }

        public void AppendCString(byte* text)
        {
            for (; *text != 0; text++) Append(*text);
        }

        public void Append(ulong value)
        {
            // Digits come out lowest first; write them into place from the right.
            int digits = 1;
            for (ulong v = value / 10; v != 0; v /= 10) digits++;
            if (_length + digits >= _capacity) { _cut = true; return; }
            for (int i = digits - 1; i >= 0; i--)
            {
                _bytes[_length + i] = (byte)('0' + value % 10);
                value /= 10;
            }
            _length += digits;
            _bytes[_length] = 0;
        }

        public void AppendHex(ulong value)
        {
            Append("0x");
            int digits = 1;
            for (ulong v = value >> 4; v != 0; v >>= 4) digits++;
            for (int i = digits - 1; i >= 0; i--)
            {
                uint nibble = (uint)(value >> (i * 4)) & 0xF;
                Append((byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10));
            }
        }

        /// <summary>Sets the length after text was written straight into the bytes (the exit
        /// summary's command name, read from /proc into the buffer).</summary>
        public void Truncate(int length)
        {
            _length = length;
            _bytes[length] = 0;
        }

        public static bool Equals(byte* a, string b)
        {
            fixed (char* chars = b)
            {
                int i = 0;
                for (; i < b.Length; i++)
                    if (a[i] != (byte)chars[i]) return false;
                return a[i] == 0;
            }
        }

        /// <summary>Parses decimal digits at <paramref name="text"/>; stops at the first non-digit.</summary>
        public static ulong ParseUnsigned(byte* text, out int used)
        {
            ulong value = 0;
            used = 0;
            while (text[used] >= (byte)'0' && text[used] <= (byte)'9')
            {
                value = value * 10 + (ulong)(text[used] - (byte)'0');
                used++;
            }
            return value;
        }
    }
}
