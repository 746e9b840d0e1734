namespace Konfiscator.Bench.Reports;

/// <summary>The three report files of a run.</summary>
/// <param name="Markdown">bench.md</param>
/// <param name="Json">bench.json</param>
/// <param name="Svg">bench.svg</param>
public sealed record ReportPaths(string Markdown, string Json, string Svg);

/// <summary>Writes all three reports into a directory.</summary>
public static class ReportFiles
{
    /// <summary>Writes <c>{baseName}.md</c>, <c>{baseName}.json</c> and <c>{baseName}.svg</c> into
    /// <paramref name="directory"/> (created if needed) and returns their paths.</summary>
    public static async Task<ReportPaths> WriteAllAsync(BenchResults results, string directory, string baseName = "bench",
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(results);
        Directory.CreateDirectory(directory);
        var paths = new ReportPaths(
            Path.GetFullPath(Path.Combine(directory, baseName + ".md")),
            Path.GetFullPath(Path.Combine(directory, baseName + ".json")),
            Path.GetFullPath(Path.Combine(directory, baseName + ".svg")));
        await File.WriteAllTextAsync(paths.Markdown, MarkdownReport.Write(results), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(paths.Json, JsonReport.Write(results), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(paths.Svg, SvgChart.Write(results), cancellationToken).ConfigureAwait(false);
        return paths;
    }
}
