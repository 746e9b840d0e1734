// The arithmetic of sampling by bytes, without libm (the library needs libc
// alone): a per-thread random number generator, the exponential draw of the
// next countdown, and a sample's weight.
//
// A thread counts down a random number of bytes drawn from an exponential
// distribution of mean M; the allocation during which the countdown runs out is
// sampled. Bytes are then sampled as a Poisson process, so a block of s bytes is
// sampled with probability P = 1 - exp(-s/M), whatever came before it. A sample
// stands for s/P bytes and 1/P blocks: the sum over samples estimates the bytes
// (and blocks) allocated without bias.

namespace Konfiscator.Native.Sampling
{
    internal static unsafe class SampleMath
    {
        private const double Ln2 = 0.69314718055994530942;

        /// <summary>xorshift64*: good enough for sampling decisions, and one multiply.</summary>
        public static ulong Next(ulong* state)
        {
            ulong x = *state;
            if (x == 0) x = 0x9E3779B97F4A7C15;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            *state = x;
            return x * 0x2545F4914F6CDD1D;
        }

        /// <summary>A draw from the exponential distribution of mean <paramref name="mean"/>, at least 1.</summary>
        public static long Exponential(ulong* state, ulong mean)
        {
            // u in (0, 1]: 53 random bits, never 0, so the logarithm is finite.
            double u = (double)((Next(state) >> 11) + 1) * (1.0 / 9007199254740992.0);
            double bytes = -Ln(u) * (double)mean;
            if (bytes < 1) return 1;
            if (bytes > 4e18) return 4000000000000000000L;
            return (long)bytes;
        }

        /// <summary>ln(x) for x &gt; 0: the exponent from the bits, the mantissa by the atanh series.</summary>
        public static double Ln(double x)
        {
            long bits = *(long*)&x;
            int exponent = (int)((bits >> 52) & 0x7FF) - 1023;
            long mantissaBits = (bits & 0x000FFFFFFFFFFFFFL) | (1023L << 52);
            double m = *(double*)&mantissaBits;               // [1, 2)
            if (m > 1.4142135623730951) { m *= 0.5; exponent++; } // [0.707, 1.414]
            double t = (m - 1) / (m + 1);
            double t2 = t * t;
            double series = 1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 * (1.0 / 11 + t2 * (1.0 / 13 + t2 / 15))))));
            return exponent * Ln2 + 2 * t * series;
        }

        /// <summary>1 - exp(-x) for x ≥ 0, accurate for small x too.</summary>
        public static double OneMinusExpNeg(double x)
        {
            if (x < 1e-3)
                return x * (1 - x * (0.5 - x * (1.0 / 6 - x / 24)));
            if (x > 40) return 1;
            // exp(-x) = 2^-k * exp(-r), r in [0, ln 2).
            int k = (int)(x / Ln2);
            double r = x - k * Ln2;
            double term = 1, sum = 1;
            for (int i = 1; i < 18; i++)
            {
                term *= -r / i;
                sum += term;
            }
            long scaleBits = (long)(1023 - k) << 52;
            return 1 - sum * *(double*)&scaleBits;
        }

        /// <summary>How many bytes a sample of a <paramref name="size"/>-byte request stands for.</summary>
        public static double WeightBytes(ulong size, ulong mean)
        {
            if (size == 0) return (double)mean;
            return size / OneMinusExpNeg((double)size / mean);
        }
    }
}
