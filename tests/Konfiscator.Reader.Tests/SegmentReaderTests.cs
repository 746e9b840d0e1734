using System.Buffers.Binary;
using CsCheck;
using Konfiscator.Reader;
using Konfiscator.Stats;

namespace Konfiscator.Reader.Tests;

public class SegmentReaderTests
{
    [Fact]
    public void Valid_segment_sums_arena_shared_and_thread_slots_and_takes_process_figures_from_slot_0()
    {
        using var dir = new TempDir();
        var b = new SegmentBuilder { Pid = 777, StartTime = 99, Generation = 0, Command = "python3", Arenas = 2, ThreadSlots = 3, ThreadSlotsUsed = 3 }
            .Arena(0, StatsLayout.MallocCalls, 5).Arena(1, StatsLayout.MallocCalls, 7)
            .Shared(StatsLayout.MallocCalls, 11).Thread(2, StatsLayout.MallocCalls, 13)
            .Arena(0, StatsLayout.LargestFreeBlock, 4096).Arena(1, StatsLayout.LargestFreeBlock, 65536)
            .Arena(0, StatsLayout.FreeBlocks, 3).Arena(1, StatsLayout.FreeBlocks, 4)
            .Process(StatsLayout.MmapCalls, 2).Process(StatsLayout.MunmapCalls, 1)
            .Process(StatsLayout.BytesMapped, 1 << 20).Process(StatsLayout.PeakBytesInUse, 5000)
            // Slot 0 entries that are not process figures are ignored; arena copies of process figures too.
            .Process(StatsLayout.MallocCalls, 1000).Arena(0, StatsLayout.MmapCalls, 1000);

        var r = SegmentReader.Read(b.WriteTo(dir.Path));

        Assert.True(r.Ok, r.Detail);
        var s = r.Stats!;
        Assert.Equal(777, s.Pid);
        Assert.Equal(99UL, s.StartTime);
        Assert.Equal("python3", s.Command);
        Assert.Equal(2, s.ArenaCount);
        Assert.False(s.IsFinal);
        Assert.Equal(5UL + 7 + 11 + 13, s[StatsLayout.MallocCalls]);
        Assert.Equal(65536UL, s[StatsLayout.LargestFreeBlock]);
        Assert.Equal(7UL, s[StatsLayout.FreeBlocks]);
        Assert.Equal(2UL, s[StatsLayout.MmapCalls]);
        Assert.Equal(1UL, s[StatsLayout.MunmapCalls]);
        Assert.Equal(1UL << 20, s[StatsLayout.BytesMapped]);
        Assert.Equal(5000UL, s[StatsLayout.PeakBytesInUse]);
    }

    [Fact]
    public void Bytes_in_use_is_a_wrapping_sum_read_as_signed_and_clamped_at_zero()
    {
        using var dir = new TempDir();
        // Thread 0 allocated 1000 bytes, thread 1 freed 300 of them: its slot is "negative".
        var b = new SegmentBuilder().Thread(0, StatsLayout.BytesInUse, 1000).Thread(1, StatsLayout.BytesInUse, unchecked((ulong)-300L));
        Assert.Equal(700UL, SegmentReader.Read(b.WriteTo(dir.Path)).Stats![StatsLayout.BytesInUse]);

        // A torn read can make the total negative for a moment: never report 2^64 - n bytes.
        b.Thread(0, StatsLayout.BytesInUse, 100);
        Assert.Equal(0UL, SegmentReader.Read(b.WriteTo(dir.Path)).Stats![StatsLayout.BytesInUse]);
    }

    [Fact]
    public void Per_class_counts_of_the_fast_paths_add_calls_bytes_cached_bytes_and_histogram()
    {
        using var dir = new TempDir();
        // Thread 0: 10 mallocs from bin 3 (80-byte blocks, 72 usable, requests of 57..72
        // bytes: a bin across the power of two 64), 6 of them of 57..64 bytes (class j = 5,
        // h = 8) and 4 of 65..72 (j = 6), and 4 frees into it; 2 mallocs of 7 bytes from bin 0
        // (24 usable; counted by request size, so in bucket le=8).
        // Thread 1: 5 frees into bin 3 of blocks thread 0 allocated, 1 plain malloc of 100 bytes.
        var b = new SegmentBuilder()
            .Thread(0, StatsLayout.HalfClassMallocsFirst + 5, 6).Thread(0, StatsLayout.HalfClassMallocsFirst + 6, 4)
            .Thread(0, StatsLayout.BinFreesFirst + 3, 4)
            .Thread(0, StatsLayout.SmallMallocsFirst + 6, 2)
            // Refills put two 80-byte blocks in bin 3 and two 32-byte blocks in bin 0 (counted
            // by the slow path).
            .Thread(0, StatsLayout.CachedBytes, 2 * 80 + 2 * 32)
            .Thread(1, StatsLayout.BinFreesFirst + 3, 5)
            .Thread(1, StatsLayout.MallocCalls, 1).Thread(1, StatsLayout.BytesAllocated, 104)
            .Thread(1, StatsLayout.BytesInUse, 104).Thread(1, StatsLayout.HistogramFirst + 7, 1);

        var s = SegmentReader.Read(b.WriteTo(dir.Path)).Stats!;

        Assert.Equal(10UL + 2 + 1, s[StatsLayout.MallocCalls]);
        Assert.Equal(4UL + 5, s[StatsLayout.FreeCalls]);
        Assert.Equal(10UL * 72 + 2 * 24 + 104, s[StatsLayout.BytesAllocated]);
        Assert.Equal(9UL * 72, s[StatsLayout.BytesFreed]);
        Assert.Equal(1UL * 72 + 2 * 24 + 104, s[StatsLayout.BytesInUse]);
        // Bin 3 (80-byte blocks): 2 from the heap + 9 freed - 10 taken; bin 0: 2 in, 2 taken.
        Assert.Equal(1UL * 80, s[StatsLayout.CachedBytes]);
        Assert.Equal(2UL, s.Histogram[3]);                                 // 7 bytes: le=8
        Assert.Equal(6UL, s.Histogram[StatsLayout.HistogramBucket(64)]);   // 57..64 bytes: le=64
        Assert.Equal(4UL + 1, s.Histogram[7]);                             // 65..72 bytes and the 100: le=128
        Assert.Equal(13UL, s.HistogramCount);
    }

    [Fact]
    public void Thread_slots_past_the_used_count_are_not_read()
    {
        using var dir = new TempDir();
        var b = new SegmentBuilder { ThreadSlots = 4, ThreadSlotsUsed = 1 }
            .Thread(0, StatsLayout.MallocCalls, 3).Thread(3, StatsLayout.MallocCalls, 1000);
        Assert.Equal(3UL, SegmentReader.Read(b.WriteTo(dir.Path)).Stats![StatsLayout.MallocCalls]);
    }

    [Fact]
    public void A_writer_that_leaves_the_slot_split_zero_is_read_over_all_slots()
    {
        using var dir = new TempDir();
        var b = new SegmentBuilder { OmitSlotSplit = true, Arenas = 2, ThreadSlots = 2 }
            .Arena(0, StatsLayout.MallocCalls, 1).Thread(1, StatsLayout.MallocCalls, 2);
        var r = SegmentReader.Read(b.WriteTo(dir.Path));
        Assert.True(r.Ok, r.Detail);
        Assert.Equal(3UL, r.Stats![StatsLayout.MallocCalls]);
    }

    [Fact]
    public void Histogram_and_command_name_are_decoded()
    {
        using var dir = new TempDir();
        var b = new SegmentBuilder { Command = "a b\u00e9" }
            .Requests(0, StatsLayout.MallocCalls, 1, 2)
            .Requests(0, StatsLayout.MallocCalls, 100, 3)
            .Requests(1, StatsLayout.CallocCalls, 5UL << 30, 1);
        var s = SegmentReader.Read(b.WriteTo(dir.Path)).Stats!;
        Assert.Equal("a b\u00e9", s.Command);
        Assert.Equal(2UL, s.Histogram[0]);
        Assert.Equal(3UL, s.Histogram[7]); // 100 <= 128
        Assert.Equal(1UL, s.Histogram[StatsLayout.HistogramBuckets - 1]);
        Assert.Equal(6UL, s.HistogramCount);
        Assert.Equal(2UL + 300 + (5UL << 30), s[StatsLayout.RequestSizeSum]);
    }

    [Fact]
    public void Empty_command_reads_as_unknown() =>
        Assert.Equal("unknown", SegmentReader.DecodeCommand(new byte[StatsLayout.CommandBytes]));

    [Fact]
    public void Final_flag_is_seen()
    {
        using var dir = new TempDir();
        var s = SegmentReader.Read(new SegmentBuilder { Flags = StatsLayout.FlagFinal }.WriteTo(dir.Path)).Stats!;
        Assert.True(s.IsFinal);
    }

    [Fact]
    public void Truncated_header_is_an_error()
    {
        using var dir = new TempDir();
        var bytes = new SegmentBuilder().Build().AsSpan(0, 100).ToArray();
        File.WriteAllBytes(dir.File("4242.kstats"), bytes);
        Expect(ReadError.Truncated, SegmentReader.Read(dir.File("4242.kstats")));
    }

    [Fact]
    public void File_shorter_than_its_slots_is_an_error()
    {
        using var dir = new TempDir();
        var bytes = new SegmentBuilder().Build();
        File.WriteAllBytes(dir.File("4242.kstats"), bytes.AsSpan(0, bytes.Length - 8).ToArray());
        Expect(ReadError.Truncated, SegmentReader.Read(dir.File("4242.kstats")));
    }

    [Fact]
    public void Wrong_magic_version_and_layout_are_errors()
    {
        using var dir = new TempDir();
        Expect(ReadError.BadMagic, SegmentReader.Read(new SegmentBuilder { Magic = 0x1122334455667788 }.WriteTo(dir.Path)));
        Expect(ReadError.BadVersion, SegmentReader.Read(new SegmentBuilder { Version = StatsLayout.Version + 1 }.WriteTo(dir.Path)));
        Expect(ReadError.BadLayout, SegmentReader.Read(new SegmentBuilder { HeaderSize = 512 }.WriteTo(dir.Path)));
        Expect(ReadError.BadLayout, SegmentReader.Read(new SegmentBuilder { SlotSize = 64 }.WriteTo(dir.Path)));
        Expect(ReadError.BadLayout, SegmentReader.Read(new SegmentBuilder { SlotCountOverride = 0 }.WriteTo(dir.Path)));
        Expect(ReadError.BadLayout, SegmentReader.Read(new SegmentBuilder { Arenas = 1, ThreadSlots = 1, SlotCountOverride = 9 }.WriteTo(dir.Path)));
        Expect(ReadError.BadLayout, SegmentReader.Read(new SegmentBuilder { Pid = -5 }.WriteTo(dir.Path, "5.kstats")));
    }

    [Fact]
    public void Huge_slot_count_is_refused_without_reading_it()
    {
        using var dir = new TempDir();
        var bytes = new SegmentBuilder().Build();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(StatsLayout.OffSlotCount), uint.MaxValue);
        File.WriteAllBytes(dir.File("4242.kstats"), bytes);
        Expect(ReadError.BadLayout, SegmentReader.Read(dir.File("4242.kstats")));
    }

    [Fact]
    public void Header_pid_or_generation_that_disagrees_with_the_name_is_an_error()
    {
        using var dir = new TempDir();
        Expect(ReadError.NameMismatch, SegmentReader.Read(new SegmentBuilder { Pid = 10 }.WriteTo(dir.Path, "11.kstats")));
        Expect(ReadError.NameMismatch, SegmentReader.Read(new SegmentBuilder { Pid = 10, Generation = 1 }.WriteTo(dir.Path, "10.2.kstats")));
    }

    [Fact]
    public void Random_bytes_are_an_error()
    {
        using var dir = new TempDir();
        var bytes = new byte[8192];
        new Random(42).NextBytes(bytes);
        File.WriteAllBytes(dir.File("4242.kstats"), bytes);
        Expect(ReadError.BadMagic, SegmentReader.Read(dir.File("4242.kstats")));
    }

    [Fact]
    public void Symlink_is_not_followed()
    {
        using var dir = new TempDir();
        using var elsewhere = new TempDir();
        string target = new SegmentBuilder { Pid = 4242 }.WriteTo(elsewhere.Path);
        File.CreateSymbolicLink(dir.File("4242.kstats"), target);
        Expect(ReadError.Symlink, SegmentReader.Read(dir.File("4242.kstats")));
        // A dangling link too.
        File.CreateSymbolicLink(dir.File("4243.kstats"), "/nonexistent/target");
        Expect(ReadError.Symlink, SegmentReader.Read(dir.File("4243.kstats")));
    }

    [Fact]
    public void Fifo_and_directory_are_errors_and_never_block()
    {
        using var dir = new TempDir();
        Assert.Equal(0, MkFifo(dir.File("4242.kstats"), 0x180));
        Expect(ReadError.NotRegularFile, SegmentReader.Read(dir.File("4242.kstats")));
        Directory.CreateDirectory(dir.File("4243.kstats"));
        Expect(ReadError.NotRegularFile, SegmentReader.Read(dir.File("4243.kstats")));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MkFifo(string path, uint mode);

    [Fact]
    public void A_file_being_created_is_pending_not_an_error()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("1.kstats"), []);
        Assert.Equal(ReadStatus.Pending, SegmentReader.Read(dir.File("1.kstats")).Status);
        // Sized, but the magic (written last) not there yet.
        File.WriteAllBytes(dir.File("2.kstats"), new byte[StatsLayout.HeaderSize + 2 * StatsLayout.SlotSize]);
        Assert.Equal(ReadStatus.Pending, SegmentReader.Read(dir.File("2.kstats")).Status);
    }

    [Fact]
    public void A_missing_file_is_gone_not_an_error()
    {
        using var dir = new TempDir();
        Assert.Equal(ReadStatus.Gone, SegmentReader.Read(dir.File("1.kstats")).Status);
    }

    [Fact]
    public void Garbage_never_throws()
    {
        using var dir = new TempDir();
        string path = dir.File("4242.kstats");
        var valid = new SegmentBuilder().Build();
        // Random files, and valid files with random bytes overwritten, of random lengths.
        Gen.Select(Gen.Byte.Array[0, 4096], Gen.Int[0, valid.Length], Gen.Bool)
            .Sample((noise, cut, mutate) =>
            {
                byte[] bytes;
                if (mutate)
                {
                    bytes = valid.AsSpan(0, cut).ToArray();
                    noise.AsSpan(0, Math.Min(noise.Length, bytes.Length)).CopyTo(bytes);
                }
                else bytes = noise;
                File.WriteAllBytes(path, bytes);
                var r = SegmentReader.Read(path);
                Assert.True(r.Status is ReadStatus.Ok or ReadStatus.Error or ReadStatus.Pending);
            }, iter: 300);
    }

    [Theory]
    [InlineData("123.kstats", true, 123, 0u)]
    [InlineData("123.4.kstats", true, 123, 4u)]
    [InlineData("exporter.pid", false, 0, 0u)]
    [InlineData("123.0.kstats", false, 0, 0u)]
    [InlineData("0.kstats", false, 0, 0u)]
    [InlineData("-1.kstats", false, 0, 0u)]
    [InlineData("12a.kstats", false, 0, 0u)]
    [InlineData(".kstats", false, 0, 0u)]
    [InlineData("123.kstats.tmp", false, 0, 0u)]
    [InlineData("99999999999.kstats", false, 0, 0u)]
    public void Segment_file_names(string name, bool valid, int pid, uint generation)
    {
        Assert.Equal(valid, SegmentFileName.TryParse(name, out int p, out uint g));
        if (!valid) return;
        Assert.Equal(pid, p);
        Assert.Equal(generation, g);
        Assert.Equal(name, SegmentFileName.Format(p, g));
    }

    [Fact]
    public void Proc_stat_parsing_copes_with_odd_command_names()
    {
        string stat = "4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        Assert.Equal(('S', 987654UL), ProcFs.ParseStat(stat));
        Assert.Null(ProcFs.ParseStat("garbage"));
        Assert.True(ProcFs.Instance.IsRunning(Environment.ProcessId, ProcFs.SelfStartTime()));
        Assert.False(ProcFs.Instance.IsRunning(Environment.ProcessId, ProcFs.SelfStartTime() + 1));
    }

    private static void Expect(ReadError error, ReadResult result)
    {
        Assert.Equal(ReadStatus.Error, result.Status);
        Assert.Equal(error, result.Error);
        Assert.Null(result.Stats);
        Assert.False(string.IsNullOrEmpty(result.Detail));
    }
}
