using System.Text;
using Konfiscator.Native.Tests.Native;
using Konfiscator.Native.Tests.Support;

namespace Konfiscator.Native.Tests.Preloaded;

/// <summary>git init/add/commit/log in a temporary repository. With the author, committer,
/// dates and configuration fixed, every object id is determined by the content, so the whole
/// transcript must be the same with and without the library.</summary>
public sealed class GitTests
{
    [Fact]
    public void Git_InitAddCommitLog_ProducesTheSameTranscript_AsWithoutTheLibrary()
    {
        string git = Tools.Require("git");
        using var dir = new TempDir();

        string baseline = Transcript(dir, "baseline", (arguments, repo, env) => ChildProcess.Run(git, arguments, repo, env));
        var runs = new List<PreloadedRun>();
        string preloaded = Transcript(dir, "preloaded", (arguments, repo, env) =>
        {
            var run = Preload.Run(git, arguments, repo, env);
            runs.Add(run);
            return run.Result;
        });

        Assert.Contains("Author:     Konfiscator Test <test@konfiscator.invalid>", baseline);
        Assert.Equal(baseline, preloaded);
        Assert.All(runs, run => run.AssertRan("git"));
    }

    internal static string Transcript(TempDir dir, string name, Func<IReadOnlyList<string>, string, IReadOnlyDictionary<string, string?>, ChildResult> run)
    {
        string home = dir.Subdirectory($"{name}-home");
        string repo = dir.Subdirectory(name);
        var environment = new Dictionary<string, string?>
        {
            ["HOME"] = home,
            ["GIT_CONFIG_NOSYSTEM"] = "1",
            ["GIT_CONFIG_GLOBAL"] = "/dev/null",
            ["GIT_CEILING_DIRECTORIES"] = dir.Path,
            ["GIT_AUTHOR_NAME"] = "Konfiscator Test",
            ["GIT_AUTHOR_EMAIL"] = "test@konfiscator.invalid",
            ["GIT_AUTHOR_DATE"] = "2024-03-01T12:00:00+00:00",
            ["GIT_COMMITTER_NAME"] = "Konfiscator Committer",
            ["GIT_COMMITTER_EMAIL"] = "committer@konfiscator.invalid",
            ["GIT_COMMITTER_DATE"] = "2024-03-02T08:30:00+00:00",
            ["TZ"] = "UTC",
            ["LC_ALL"] = "C",
            ["GIT_PAGER"] = "cat",
        };

        var transcript = new StringBuilder();
        void Git(params string[] arguments)
        {
            var result = run(arguments, repo, environment).AssertSucceeded();
            transcript.Append("$ git ").AppendJoin(' ', arguments).Append('\n').Append(result.StdoutText);
        }

        Git("init", "-q", "-b", "main", ".");
        for (int file = 0; file < 40; file++)
            File.WriteAllText(Path.Combine(repo, $"file{file:D2}.txt"), Lines(file, 200));
        Directory.CreateDirectory(Path.Combine(repo, "sub"));
        File.WriteAllText(Path.Combine(repo, "sub", "notes.md"), "# notes\n" + Lines(99, 50));
        Git("add", "-A");
        Git("commit", "-q", "-m", "First commit\n\nForty files and a note.");

        for (int file = 0; file < 40; file += 4)
            File.AppendAllText(Path.Combine(repo, $"file{file:D2}.txt"), Lines(file + 1000, 30));
        File.Delete(Path.Combine(repo, "file01.txt"));
        File.Move(Path.Combine(repo, "file02.txt"), Path.Combine(repo, "sub", "moved.txt"));
        Git("add", "-A");
        Git("commit", "-q", "-m", "Second commit");

        Git("log", "-p", "--stat", "--format=fuller");
        Git("rev-parse", "HEAD", "HEAD~1", "HEAD^{tree}");
        Git("ls-tree", "-r", "HEAD");
        Git("diff", "--stat", "-M", "HEAD~1", "HEAD");
        Git("cat-file", "-p", "HEAD");
        Git("fsck", "--full", "--no-progress");
        return transcript.ToString();
    }

    private static string Lines(int seed, int count)
    {
        var text = new StringBuilder();
        for (int i = 0; i < count; i++)
            text.Append($"line {i} of {seed}: ").Append(new string((char)('a' + (seed + i) % 26), (seed * 7 + i) % 60)).Append('\n');
        return text.ToString();
    }
}
