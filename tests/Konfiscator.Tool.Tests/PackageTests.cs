using System.Diagnostics;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>What `./build.sh --package` ships (test.sh builds it): the tarball runs a program on a
/// machine without .NET, and the .NET tool package installs and runs.</summary>
public class PackageTests
{
    private static string Tarball()
    {
        var found = Directory.Exists(Artifacts.Directory)
            ? Directory.GetFiles(Artifacts.Directory, "konfiscator-*-linux-x64.tar.gz")
            : [];
        if (found.Length != 1)
            throw new Xunit.Sdk.XunitException(
                $"expected one konfiscator-<version>-linux-x64.tar.gz in {Artifacts.Directory}, found {found.Length}: run ./build.sh --package (test.sh does)");
        return found[0];
    }

    [Fact]
    public async Task Tarball_runs_a_program_where_no_dotnet_is_installed()
    {
        string tarball = Tarball();
        using var dir = new TempDir();
        var (untar, untarOutput) = await RunAsync("tar", ["-xzf", tarball, "-C", dir.Path], null);
        Assert.True(untar == 0, untarOutput);
        string top = Directory.GetDirectories(dir.Path).Single();
        Assert.Equal(Path.GetFileName(tarball)[..^".tar.gz".Length], Path.GetFileName(top));
        foreach (string file in new[] { "bin/konfiscator", "bin/konf-driver", "lib/libkonfiscator.so", "README.md", "LICENSE" })
            Assert.True(File.Exists(Path.Combine(top, file)), $"{file} is missing from the tarball");
        Assert.Equal(File.ReadAllText(Path.Combine(Artifacts.RepoRoot, "LICENSE")), File.ReadAllText(Path.Combine(top, "LICENSE")));

        // No .NET anywhere: an empty PATH, a DOTNET_ROOT that does not exist, nothing inherited.
        string emptyPath = Path.Combine(dir.Path, "empty");
        Directory.CreateDirectory(emptyPath);
        // Sampling on (the default): the calls counted are exactly the driver's own and stdio's
        // buffer (the sampler's unwinder loads nothing; libgcc_s's loading once added a few).
        var environment = new Dictionary<string, string>
        {
            ["PATH"] = emptyPath, ["HOME"] = dir.Path, ["DOTNET_ROOT"] = "/nonexistent",
        };
        var (code, output) = await RunAsync(Path.Combine(top, "bin", "konfiscator"),
            ["run", "--listen", "127.0.0.1:0", "--", Path.Combine(top, "bin", "konf-driver")], environment);
        Assert.True(code == 0, output);
        Assert.Contains("konf-driver exited with status 0", output);
        Assert.Matches(@"│ malloc +│ +51 │", output);
    }

    [Fact]
    public async Task Dotnet_tool_package_installs_and_runs()
    {
        string package = Path.Combine(Artifacts.Directory, "nupkg");
        if (!Directory.Exists(package) || Directory.GetFiles(package, "konfiscator.*.nupkg").Length == 0)
            throw new Xunit.Sdk.XunitException($"no konfiscator.<version>.nupkg in {package}: run ./build.sh --package (test.sh does)");
        // The package says its licence (an SPDX expression, as NuGet shows it) and carries the text.
        string nupkg = Directory.GetFiles(package, "konfiscator.*.nupkg").Single();
        using (var zip = System.IO.Compression.ZipFile.OpenRead(nupkg))
        {
            Assert.NotNull(zip.GetEntry("LICENSE"));
            using var nuspec = new StreamReader(zip.GetEntry("konfiscator.nuspec")!.Open());
            Assert.Contains("<license type=\"expression\">MIT</license>", nuspec.ReadToEnd(), StringComparison.Ordinal);
        }
        using var dir = new TempDir();
        // Only the local package source: nothing is fetched from anywhere.
        File.WriteAllText(dir.File("nuget.config"),
            $"""<?xml version="1.0" encoding="utf-8"?><configuration><packageSources><clear /><add key="local" value="{package}" /></packageSources></configuration>""");
        var (install, installOutput) = await RunAsync("dotnet",
            ["tool", "install", "konfiscator", "--tool-path", dir.File("tools"), "--configfile", dir.File("nuget.config")], null);
        Assert.True(install == 0, installOutput);

        var (code, output) = await RunAsync(dir.File("tools/konfiscator"), ["run", "--listen", "127.0.0.1:0", "--", "true"], null);
        Assert.True(code == 0, output);
        Assert.Contains("true exited with status 0", output);
    }

    private static async Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> args, IDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        if (environment is not null)
        {
            start.Environment.Clear();
            foreach (var (k, v) in environment) start.Environment[k] = v;
        }
        else
        {
            start.Environment.Remove("KONFISCATOR_STATS_DIR");
            start.Environment.Remove("KONFISCATOR_LIB");
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"{program} did not finish within 3 minutes");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
