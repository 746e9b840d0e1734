using System.Text.RegularExpressions;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Source;

/// <summary>The library's layers point one way (src/Native/README.md, "Layers"): SystemModule &lt;
/// Platform &lt; Stats &lt; Sampling &lt; Heap &lt; Api. A file may name what is in its own layer or
/// below, never above. This reads the source tree and fails on a file of a lower layer that
/// names a higher layer: a `using` of its namespace, a qualified name through it, or one of its
/// types (as a pointer, a static access, a declaration). Textual, so comments and strings are
/// taken out first.</summary>
public sealed partial class LayerTests
{
    /// <summary>Directory under src/Native, the namespace its files declare, in layer order.</summary>
    private static readonly (string Directory, string Namespace)[] Layers =
    [
        ("SystemModule", ""),   // the runtime's own types, in System.* namespaces
        ("Platform", "Konfiscator.Native.Platform"),
        ("Stats", "Konfiscator.Native.Stats"),
        ("Sampling", "Konfiscator.Native.Sampling"),
        ("Heap", "Konfiscator.Native.Heaps"),
        ("Api", "Konfiscator.Native.Api"),
    ];

    [Fact]
    public void NoFileNamesALayerAboveItsOwn()
    {
        string root = Path.Combine(RepoPaths.Root, "src", "Native");
        var files = Layers.Select(l => Directory.GetFiles(Path.Combine(root, l.Directory), "*.cs")
                                                .Select(f => (Path: f, Text: File.ReadAllText(f))).ToArray()).ToArray();
        Assert.All(files, f => Assert.NotEmpty(f));
        // Every .cs file of the library is in one of the layers' directories.
        var known = files.SelectMany(f => f).Select(f => f.Path).ToHashSet();
        var stray = Directory.GetFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsBuildOutput(root, f) && !known.Contains(f));
        Assert.Empty(stray);

        var types = files.Select(layer => layer.SelectMany(f => TypeDeclaration().Matches(StripCommentsAndStrings(f.Text)))
                                             .Select(m => m.Groups[1].Value).ToHashSet()).ToArray();
        var problems = new List<string>();
        for (int layer = 0; layer < Layers.Length; layer++)
        {
            foreach (var (path, text) in files[layer])
            {
                string relative = Path.GetRelativePath(root, path);
                string code = StripCommentsAndStrings(text);
                if (layer > 0 && !Regex.IsMatch(code, $@"\bnamespace\s+{Regex.Escape(Layers[layer].Namespace)}\b"))
                    problems.Add($"{relative}: not in namespace {Layers[layer].Namespace} (its directory's layer)");
                problems.AddRange(Violations(layer, code, types).Select(v => $"{relative}: {v}"));
            }
        }
        Assert.True(problems.Count == 0, "lower layers naming higher ones:\n" + string.Join("\n", problems));
    }

    /// <summary>The check itself catches what it is for: each line, put in a file of the given
    /// layer, names a layer above it (these are the edges issue 10 found).</summary>
    [Theory]
    [InlineData(1, "StatsWriter.CountMap(length);")]                                  // Platform counting maps
    [InlineData(2, "public static void FlushInUse(Konfiscator.Native.Heaps.ThreadCache* tc) { }")]
    [InlineData(2, "public static void FlushInUse(ThreadCache* tc) { }")]
    [InlineData(2, "using Konfiscator.Native.Heaps;")]
    [InlineData(2, "Sampling.SampleTables.Attach(null, 0);")]
    [InlineData(4, "Konfiscator.Native.Api.Counting.Add(tc, 1, 2);")]                 // Heap calling Api
    [InlineData(3, "public static byte* Charge(ThreadCache* tc, Block* b, nuint size) => null;")]
    [InlineData(0, "private static void ThrowOverflowException() => Fatal.Die(\"overflow\");")]
    public void TheCheckFindsAHigherLayerNamed(int layer, string line)
    {
        var types = Layers.Select(_ => new HashSet<string>()).ToArray();
        types[1].Add("Fatal");
        types[2].Add("StatsWriter");
        types[3].Add("SampleTables");
        types[4].UnionWith(["ThreadCache", "Block", "Heap"]);
        types[5].Add("Counting");
        Assert.NotEmpty(Violations(layer, StripCommentsAndStrings(line), types));
        // The same line one layer higher up than what it names is fine (down is allowed).
        Assert.Empty(Violations(Layers.Length - 1, StripCommentsAndStrings(line), types));
    }

    [Fact]
    public void CommentsAndMemberNamesAreNotReferences()
    {
        var types = Layers.Select(_ => new HashSet<string>()).ToArray();
        types[4].Add("Arena");
        types[5].Add("Release");
        string code = StripCommentsAndStrings("""
            // an Arena* in a comment
            string s = "Arena* in a string";
            FutexLock.Release(&word);
            a->Stats[1] = Konfiscator.Stats.StatsLayout.MmapCalls;
            """);
        Assert.Empty(Violations(1, code, types));
    }

    private static IEnumerable<string> Violations(int layer, string code, HashSet<string>[] types)
    {
        // A name declared in this layer or below (a private nested struct of the same name,
        // say) is that one, whatever a higher layer also calls so.
        var ownOrBelow = types.Take(layer + 1).SelectMany(t => t).ToHashSet();
        for (int higher = layer + 1; higher < Layers.Length; higher++)
        {
            string ns = Layers[higher].Namespace;
            string last = ns[(ns.LastIndexOf('.') + 1)..];
            if (Regex.IsMatch(code, $@"\busing\s+{Regex.Escape(ns)}\s*;"))
                yield return $"using {ns}";
            if (Regex.IsMatch(code, $@"\b{Regex.Escape(ns)}\."))
                yield return $"names {ns}.";
            // A name through the namespace's last part (Sampling.Sampler) from inside Konfiscator.Native.
            if (Regex.IsMatch(code, $@"(?<![\w.>]){Regex.Escape(last)}\.[A-Z]\w*\."))
                yield return $"names {last}.";
            foreach (string type in types[higher].Except(ownOrBelow))
            {
                // As a pointer or generic type, through a static access, or declaring a variable:
                // not a member of the same name reached through something else (FutexLock.Release).
                if (Regex.IsMatch(code, $@"(?<![\w.>]){Regex.Escape(type)}(?:\s*\*|\.[A-Z]|\s*<|\s+[a-z_]\w*\s*[=;,)])"))
                    yield return $"names {Layers[higher].Directory}'s {type}";
            }
        }
    }

    private static string StripCommentsAndStrings(string text)
    {
        text = Regex.Replace(text, @"/\*.*?\*/", " ", RegexOptions.Singleline);
        text = Regex.Replace(text, @"@?""(?:[^""\\\n]|\\.)*""", "\"\"");
        text = Regex.Replace(text, @"'(?:[^'\\\n]|\\.)'", "' '");
        return Regex.Replace(text, @"//[^\n]*", "");
    }

    private static bool IsBuildOutput(string root, string path)
    {
        string first = Path.GetRelativePath(root, path).Split(Path.DirectorySeparatorChar)[0];
        return first is "obj" or "bin";
    }

    [GeneratedRegex(@"\b(?:class|struct|enum)\s+([A-Z]\w*)")]
    private static partial Regex TypeDeclaration();
}
