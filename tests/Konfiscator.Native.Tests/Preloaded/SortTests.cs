using System.Security.Cryptography;
using System.Text;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>GNU sort shuffling 200 000 lines (a fixed --random-source makes -R repeatable), with
/// a small buffer (temporary files and merges) and several threads: the output's SHA-256 must be
/// the same with and without the library.</summary>
public sealed class SortTests
{
    private const int LineCount = 200_000;

    [Fact]
    public void SortRandom_On200000Lines_GivesTheSameChecksumAsWithoutTheLibrary()
    {
        string sort = Tools.Require("sort");
        using var dir = new TempDir();
        string input = dir.File("lines.txt");
        string randomSource = dir.File("random-source.bin");
        WriteLines(input);
        var bytes = new byte[1 << 20];
        new Random(4242).NextBytes(bytes);
        File.WriteAllBytes(randomSource, bytes);

        string[] arguments = ["-R", $"--random-source={randomSource}", "-S", "2M", "-T", dir.Path, "--parallel=4", input];
        var environment = new Dictionary<string, string?> { ["LC_ALL"] = "C" };

        var baseline = ChildProcess.Run(sort, arguments, environment: environment).AssertSucceeded();
        var run = Preload.Run(sort, arguments, environment: environment);

        run.Result.AssertSucceeded();
        Assert.Equal(LineCount, baseline.Stdout.Count(b => b == (byte)'\n'));
        Assert.NotEqual(Sha256(File.ReadAllBytes(input)), Sha256(baseline.Stdout));   // really shuffled
        Assert.Equal(Sha256(baseline.Stdout), Sha256(run.Result.Stdout));
        run.AssertRan("sort");
    }

    private static void WriteLines(string path)
    {
        var text = new StringBuilder(LineCount * 40);
        ulong state = 0x9E3779B97F4A7C15;
        for (int i = 0; i < LineCount; i++)
        {
            state = state * 6364136223846793005 + 1442695040888963407;
            // Varied lengths, and some duplicate keys.
            text.Append(i % 1000 == 0 ? "duplicate line" : $"{i:D6} {state:x16}{new string('z', (int)(state >> 59))}").Append('\n');
        }
        File.WriteAllText(path, text.ToString());
    }

    private static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data));
}
