using System.Globalization;
using System.Text;
using Prometheus;

namespace Konfiscator.Tool.Tests.Support;

/// <summary>A parsed scrape (Prometheus text format or OpenMetrics), enough for assertions.</summary>
internal sealed class Exposition
{
    public readonly record struct Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    public List<Sample> Samples { get; } = [];
    public Dictionary<string, string> Types { get; } = new();
    public Dictionary<string, string> Help { get; } = new();
    public string Text { get; private set; } = "";

    public static async Task<Exposition> FromRegistryAsync(CollectorRegistry registry, ExpositionFormat format = ExpositionFormat.PrometheusText)
    {
        var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, format);
        return Parse(Encoding.UTF8.GetString(stream.ToArray()));
    }

    public static Exposition Parse(string text)
    {
        var e = new Exposition { Text = text };
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line[7..].Split(' ', 2);
                e.Types[parts[0]] = parts[1];
                continue;
            }
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var parts = line[7..].Split(' ', 2);
                e.Help[parts[0]] = parts.Length > 1 ? parts[1] : "";
                continue;
            }
            if (line.StartsWith('#')) continue;
            e.Samples.Add(ParseSample(line));
        }
        return e;
    }

    private static Sample ParseSample(string line)
    {
        int brace = line.IndexOf('{');
        int space;
        string name;
        var labels = new Dictionary<string, string>();
        if (brace >= 0 && brace < line.IndexOf(' '))
        {
            name = line[..brace];
            int i = brace + 1;
            while (line[i] != '}')
            {
                int eq = line.IndexOf('=', i);
                string key = line[i..eq];
                var value = new StringBuilder();
                int j = eq + 2; // past ="
                while (line[j] != '"')
                {
                    if (line[j] == '\\') j++;
                    value.Append(line[j]);
                    j++;
                }
                labels[key] = value.ToString();
                i = j + 1;
                if (line[i] == ',') i++;
            }
            space = i + 1;
        }
        else
        {
            space = line.IndexOf(' ');
            name = line[..space];
        }
        string valueText = line[(space + 1)..].Trim().Split(' ')[0];
        double v = valueText switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(valueText, CultureInfo.InvariantCulture),
        };
        return new Sample(name, labels, v);
    }

    /// <summary>Samples of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    public IEnumerable<Sample> Find(string name, params (string Key, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value));

    /// <summary>The single value of a series, or null if it is absent.</summary>
    public double? Value(string name, params (string Key, string Value)[] labels)
    {
        var found = Find(name, labels).ToList();
        Assert.True(found.Count <= 1, $"{name} has {found.Count} matching series");
        return found.Count == 1 ? found[0].Value : null;
    }
}
