using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Reader.Tests;

/// <summary>Folding: ended processes' final counts stay in their group; their files go.
/// Liveness is real: the segments carry the pid and start time of real `sleep` processes.</summary>
public class CollectorTests
{
    [Fact]
    public void A_process_that_ends_is_folded_into_its_group_and_its_file_removed()
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        var collector = new Collector(dir.Path);
        var seg = SegmentBuilder.For(a, "churn").Thread(0, StatsLayout.MallocCalls, 10).Thread(0, StatsLayout.BytesInUse, 4096);
        seg.WriteTo(dir.Path);

        var s1 = collector.Collect();
        var g1 = s1.Group("churn")!;
        Assert.Equal(1, g1.Live);
        Assert.Equal(0UL, g1.Exited);
        Assert.Equal(10UL, g1[StatsLayout.MallocCalls]);
        Assert.Equal(4096UL, g1[StatsLayout.BytesInUse]);
        Assert.Single(s1.Live);

        // It counts more, then ends before the next collection.
        seg.Thread(0, StatsLayout.MallocCalls, 15).WriteTo(dir.Path);
        a.End();
        var s2 = collector.Collect();
        var g2 = s2.Group("churn")!;
        Assert.Equal(0, g2.Live);
        Assert.Equal(1UL, g2.Exited);
        Assert.Equal(15UL, g2[StatsLayout.MallocCalls]);
        Assert.Equal(0UL, g2[StatsLayout.BytesInUse]); // gauges: live processes only
        Assert.Equal(4096UL, g2.EndedInUseBytes);
        Assert.Empty(s2.Live);
        Assert.Single(s2.NewlyFolded);
        Assert.Empty(dir.Names());

        // Nothing is counted twice afterwards.
        Assert.Equal(15UL, collector.Collect().Group("churn")![StatsLayout.MallocCalls]);
    }

    [Fact]
    public void A_process_that_comes_and_goes_between_two_collections_is_counted()
    {
        using var dir = new TempDir();
        using var longLived = new Sleeper();
        var collector = new Collector(dir.Path);
        SegmentBuilder.For(longLived, "churn").Thread(0, StatsLayout.MallocCalls, 100).WriteTo(dir.Path);
        Assert.Equal(100UL, collector.Collect().Group("churn")![StatsLayout.MallocCalls]);

        ulong expected = 100;
        for (int i = 0; i < 3; i++)
        {
            using var brief = new Sleeper();
            SegmentBuilder.For(brief, "churn").Thread(0, StatsLayout.MallocCalls, 7).Requests(1, StatsLayout.CallocCalls, 64, 2).WriteTo(dir.Path);
            brief.End();
            expected += 7;
        }
        var s = collector.Collect();
        var g = s.Group("churn")!;
        Assert.Equal(expected, g[StatsLayout.MallocCalls]);
        Assert.Equal(6UL, g[StatsLayout.CallocCalls]);
        Assert.Equal(6UL, g.Histogram[6]);
        Assert.Equal(1, g.Live);
        Assert.Equal(3UL, g.Exited);
        Assert.Equal([SegmentFileName.Format(longLived.Pid, 0)], dir.Names());
    }

    [Fact]
    public void A_reused_pid_with_another_start_time_is_over()
    {
        using var dir = new TempDir();
        // Our own pid, but a start time that is not ours: the process it describes is gone.
        SegmentBuilder.ForSelf("stale").Apply(b => b.StartTime += 1).Thread(0, StatsLayout.MallocCalls, 3).WriteTo(dir.Path);
        var g = new Collector(dir.Path).Collect().Group("stale")!;
        Assert.Equal(0, g.Live);
        Assert.Equal(1UL, g.Exited);
        Assert.Equal(3UL, g[StatsLayout.MallocCalls]);
        Assert.Empty(dir.Names());
    }

    [Fact]
    public void An_image_marked_final_or_followed_by_a_newer_image_is_over_while_the_process_lives()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        // Image 0 ran "sh" and exec'd; image 1 ("sleep") marked it final.
        SegmentBuilder.For(p, "sh").Apply(b => b.Flags = StatsLayout.FlagFinal).Thread(0, StatsLayout.MallocCalls, 4).WriteTo(dir.Path);
        SegmentBuilder.For(p, "sleep").Apply(b => b.Generation = 1).Thread(0, StatsLayout.MallocCalls, 9).WriteTo(dir.Path);
        // Image 1 exec'd again and image 2 exists, but image 1 was not marked (the writer died first).
        using var q = new Sleeper();
        SegmentBuilder.For(q, "a").Thread(0, StatsLayout.MallocCalls, 1).WriteTo(dir.Path);
        SegmentBuilder.For(q, "b").Apply(b => b.Generation = 1).Thread(0, StatsLayout.MallocCalls, 2).WriteTo(dir.Path);

        var collector = new Collector(dir.Path);
        var s = collector.Collect();
        Assert.Equal((0, 1UL, 4UL), Summary(s.Group("sh")!));
        Assert.Equal((1, 0UL, 9UL), Summary(s.Group("sleep")!));
        Assert.Equal((0, 1UL, 1UL), Summary(s.Group("a")!));
        Assert.Equal((1, 0UL, 2UL), Summary(s.Group("b")!));
        // Folded, but their files stay while their processes run: the names must stay taken, or
        // the next image of each would take image 0's name and pass for the older image.
        Assert.Equal(
            new[] { SegmentFileName.Format(p.Pid, 0), SegmentFileName.Format(p.Pid, 1), SegmentFileName.Format(q.Pid, 0), SegmentFileName.Format(q.Pid, 1) }
                .Order(StringComparer.Ordinal),
            dir.Names());
        // Collected again, the folded images are not counted twice; once a process ends, its files go.
        Assert.Equal((0, 1UL, 4UL), Summary(collector.Collect().Group("sh")!));
        p.End();
        s = collector.Collect();
        Assert.Equal((0, 1UL, 4UL), Summary(s.Group("sh")!));
        Assert.Equal((0, 1UL, 9UL), Summary(s.Group("sleep")!));
        Assert.Equal(
            new[] { SegmentFileName.Format(q.Pid, 0), SegmentFileName.Format(q.Pid, 1) }.Order(StringComparer.Ordinal),
            dir.Names());

        static (int, ulong, ulong) Summary(GroupFigures g) => (g.Live, g.Exited, g[StatsLayout.MallocCalls]);
    }

    [Fact]
    public void Without_the_claim_files_stay_and_are_not_counted_twice()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        SegmentBuilder.For(p, "x").Thread(0, StatsLayout.MallocCalls, 5).WriteTo(dir.Path);
        p.End();
        var collector = new Collector(dir.Path, new CollectorOptions { RemoveCollected = false });
        for (int i = 0; i < 3; i++)
        {
            var g = collector.Collect().Group("x")!;
            Assert.Equal(5UL, g[StatsLayout.MallocCalls]);
            Assert.Equal(1UL, g.Exited);
        }
        Assert.Single(dir.Names());
    }

    [Fact]
    public void A_live_segment_that_vanishes_keeps_its_last_counts()
    {
        using var dir = new TempDir();
        using var p = new Sleeper();
        string path = SegmentBuilder.For(p, "x").Thread(0, StatsLayout.MallocCalls, 5).WriteTo(dir.Path);
        var collector = new Collector(dir.Path);
        Assert.Equal(1, collector.Collect().Group("x")!.Live);
        File.Delete(path);
        var g = collector.Collect().Group("x")!;
        Assert.Equal((0, 1UL, 5UL), (g.Live, g.Exited, g[StatsLayout.MallocCalls]));
    }

    [Fact]
    public void Groups_add_counters_and_gauges_of_live_processes_and_take_maxima_where_documented()
    {
        using var dir = new TempDir();
        using var a = new Sleeper();
        using var b = new Sleeper();
        SegmentBuilder.For(a, "w").Thread(0, StatsLayout.MallocCalls, 5).Thread(0, StatsLayout.BytesInUse, 100)
            .Process(StatsLayout.PeakBytesInUse, 1000).Arena(0, StatsLayout.LargestFreeBlock, 64).Process(StatsLayout.BytesMapped, 4096)
            .WriteTo(dir.Path);
        SegmentBuilder.For(b, "w").Thread(0, StatsLayout.MallocCalls, 6).Thread(0, StatsLayout.BytesInUse, 200)
            .Process(StatsLayout.PeakBytesInUse, 700).Arena(1, StatsLayout.LargestFreeBlock, 128).Process(StatsLayout.BytesMapped, 8192)
            .WriteTo(dir.Path);
        var g = new Collector(dir.Path).Collect().Group("w")!;
        Assert.Equal(2, g.Live);
        Assert.Equal(11UL, g[StatsLayout.MallocCalls]);
        Assert.Equal(300UL, g[StatsLayout.BytesInUse]);
        Assert.Equal(12288UL, g[StatsLayout.BytesMapped]);
        Assert.Equal(1000UL, g[StatsLayout.PeakBytesInUse]);
        Assert.Equal(128UL, g[StatsLayout.LargestFreeBlock]);
    }

    [Fact]
    public void Bad_files_are_counted_once_each_by_reason_and_never_stop_collection()
    {
        using var dir = new TempDir();
        using var elsewhere = new TempDir();
        var rng = new Random(7);
        var random = new byte[4096];
        rng.NextBytes(random);
        File.WriteAllBytes(dir.File("101.kstats"), random);
        File.WriteAllBytes(dir.File("102.kstats"), new SegmentBuilder { Pid = 102 }.Build().AsSpan(0, 40).ToArray());
        new SegmentBuilder { Pid = 103, Version = 99 }.WriteTo(dir.Path);
        File.CreateSymbolicLink(dir.File("104.kstats"), new SegmentBuilder { Pid = 104 }.WriteTo(elsewhere.Path));
        File.WriteAllText(dir.File("notes.txt"), "ignored: not a segment name");
        using var p = new Sleeper();
        SegmentBuilder.For(p, "fine").Thread(0, StatsLayout.MallocCalls, 1).WriteTo(dir.Path);

        var collector = new Collector(dir.Path);
        var s = collector.Collect();
        Assert.Equal(1UL, s.ReadErrors[ReadError.BadMagic]);
        Assert.Equal(1UL, s.ReadErrors[ReadError.Truncated]);
        Assert.Equal(1UL, s.ReadErrors[ReadError.BadVersion]);
        Assert.Equal(1UL, s.ReadErrors[ReadError.Symlink]);
        Assert.Equal(4, s.NewBadFiles.Count);
        Assert.Equal(1, s.Group("fine")!.Live);

        var again = collector.Collect();
        Assert.Equal(4UL, again.ReadErrors.Values.Aggregate(0UL, (x, y) => x + y));
        Assert.Empty(again.NewBadFiles);
        // Bad files are not ours to remove; the symlink's target was never touched.
        Assert.Contains("104.kstats", dir.Names());
        Assert.Single(elsewhere.Names());

        // A changed file is a new error.
        rng.NextBytes(random);
        File.WriteAllBytes(dir.File("101.kstats"), random.AsSpan(0, 300).ToArray());
        Assert.Single(collector.Collect().NewBadFiles);
    }

    [Fact]
    public void A_missing_directory_is_reported_not_thrown()
    {
        var s = new Collector("/nonexistent/konfiscator-test").Collect();
        Assert.NotNull(s.DirectoryError);
        Assert.Empty(s.Groups);
    }
}

internal static class BuilderExtensions
{
    public static SegmentBuilder Apply(this SegmentBuilder b, Action<SegmentBuilder> change)
    {
        change(b);
        return b;
    }
}
