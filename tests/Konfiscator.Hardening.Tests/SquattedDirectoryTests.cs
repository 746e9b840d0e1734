using Konfiscator.Hardening.Tests.Support;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Hardening.Tests;

/// <summary>Issue 8 item 9, the library's side: a stats directory that another user could read,
/// write or replace is refused (nothing published there, one line, counting privately): one
/// pre-created with mode 0777 (a squatter's), one owned by another user, one that is a symbolic
/// link. The reader's side is in Tool.Tests (DirectoryTrustTests).</summary>
public class SquattedDirectoryTests
{
    [Fact]
    public void A_directory_open_to_everyone_is_not_published_into()
    {
        using var dir = new TempDir("konfiscator-squat");
        string stats = dir.Subdirectory("konfiscator-squatted");
        Preloaded.SetMode(stats, "0777");
        SettingsSpellingTests.AssertRunsPrivately(stats, "mode 0777");
        Assert.Empty(Preloaded.Segments(stats));
    }

    [Fact]
    public void A_directory_readable_by_group_is_not_published_into()
    {
        using var dir = new TempDir("konfiscator-squat");
        string stats = dir.Subdirectory("group-readable");
        Preloaded.SetMode(stats, "0750");
        SettingsSpellingTests.AssertRunsPrivately(stats, "mode 0750");
        Assert.Empty(Preloaded.Segments(stats));
    }

    [OtherUserFact]
    public void A_directory_of_another_user_is_not_published_into()
    {
        using var dir = new TempDir("konfiscator-squat");
        string stats = dir.Subdirectory("someone-elses");
        SettingsSpellingTests.Chown(stats, 65534);
        SettingsSpellingTests.AssertRunsPrivately(stats, "belongs to uid 65534");
        Assert.Empty(Preloaded.Segments(stats));
    }

    [Fact]
    public void A_symbolic_link_to_a_good_directory_is_not_followed()
    {
        using var dir = new TempDir("konfiscator-squat");
        string target = dir.Subdirectory("target");
        string link = dir.File("link");
        File.CreateSymbolicLink(link, target);
        SettingsSpellingTests.AssertRunsPrivately(link, "is a symbolic link");
        Assert.Empty(Preloaded.Segments(target));
    }

    [Fact]
    public void A_private_directory_of_this_user_is_published_into()
    {
        // The control: the same run with a directory that follows the rules publishes.
        using var dir = new TempDir("konfiscator-squat");
        string stats = dir.Subdirectory("mine");
        var result = Preloaded.Run(NativePrograms.Instance.Driver, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        Assert.Empty(Preloaded.LibraryLines(result));
        Assert.Single(Preloaded.Segments(stats));
    }

    [Fact]
    public void A_missing_directory_is_created_private()
    {
        using var dir = new TempDir("konfiscator-squat");
        string stats = dir.File("created");
        var result = Preloaded.Run(NativePrograms.Instance.Driver, [], new Dictionary<string, string?> { ["KONFISCATOR_STATS_DIR"] = stats });
        result.AssertSucceeded();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(stats));
        Assert.Single(Preloaded.Segments(stats));
    }
}
