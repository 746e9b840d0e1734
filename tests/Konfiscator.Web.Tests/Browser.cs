using Microsoft.Playwright;

namespace Konfiscator.Web.Tests;

/// <summary>Debian's chromium (found on PATH), launched headless by Playwright. Playwright's own
/// browsers are never downloaded: its install script is never run, and the executable is given.</summary>
internal static class Browser
{
    public static string Chromium()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            foreach (string name in new[] { "chromium", "chromium-browser" })
            {
                string path = Path.Combine(dir, name);
                if (File.Exists(path)) return path;
            }
        throw new Xunit.Sdk.XunitException("no chromium on PATH: these tests drive Debian's chromium (apt-get install chromium; .ci/run installs it)");
    }

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium(),
            Headless = true,
            // No sandbox (the tests may run as root, where chromium's sandbox refuses to start),
            // and no GPU on a headless machine.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        return (playwright, browser);
    }

    /// <summary>Where screenshots go when KONFISCATOR_SCREENSHOTS names a directory (docs/ is made this way).</summary>
    public static string? ScreenshotPath(string name) =>
        Environment.GetEnvironmentVariable("KONFISCATOR_SCREENSHOTS") is { Length: > 0 } dir ? Path.Combine(dir, name) : null;
}
