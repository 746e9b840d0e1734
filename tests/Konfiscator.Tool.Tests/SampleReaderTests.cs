using System.Buffers.Binary;
using Konfiscator.Reader;
using Konfiscator.Stats;
using Konfiscator.Tool.Tests.Support;

namespace Konfiscator.Tool.Tests;

/// <summary>The reader of sample tables against hand-made and hostile regions (layout:
/// src/Shared/SampleLayout.cs): a table that does not fit is skipped whole with a reason, single
/// torn or garbage entries are skipped and counted, and nothing makes it throw.</summary>
public class SampleReaderTests
{
    /// <summary>A segment (from <see cref="SegmentBuilder"/>) with a sample region after its counters.</summary>
    private sealed class Region
    {
        public readonly byte[] Bytes = new byte[SampleLayout.RegionBytes];
        public uint HighWater, Stacks, Modules;

        public Region()
        {
            U64(SampleLayout.OffMagic, SampleLayout.Magic);
            U32(SampleLayout.OffVersion, SampleLayout.Version);
            U32(SampleLayout.OffHeaderBytes, SampleLayout.HeaderBytes);
            U32(SampleLayout.OffSampleCapacity, SampleLayout.SampleCapacity);
            U32(SampleLayout.OffSampleEntryBytes, SampleLayout.SampleEntryBytes);
            U32(SampleLayout.OffStackCapacity, SampleLayout.StackCapacity);
            U32(SampleLayout.OffStackEntryBytes, SampleLayout.StackEntryBytes);
            U32(SampleLayout.OffMaxFrames, SampleLayout.MaxFrames);
            U32(SampleLayout.OffModuleCapacity, SampleLayout.ModuleCapacity);
            U32(SampleLayout.OffModuleEntryBytes, SampleLayout.ModuleEntryBytes);
            U32(SampleLayout.OffState, SampleLayout.StateOn);
            U64(SampleLayout.OffMeanBytes, 4096);
        }

        public void U64(long offset, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Bytes.AsSpan((int)offset), v);
        public void U32(long offset, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan((int)offset), v);

        public Region Stack(params ulong[] frames)
        {
            long e = SampleLayout.StacksOffset + Stacks * SampleLayout.StackEntryBytes;
            U32(e + SampleLayout.StackDepth, (uint)frames.Length);
            U64(e + SampleLayout.StackAllocSamples, 1);
            for (int i = 0; i < frames.Length; i++) U64(e + SampleLayout.StackFrames + 8 * i, frames[i]);
            U32(SampleLayout.OffStacksUsed, ++Stacks);
            return this;
        }

        public Region Sample(ulong address, ulong size, uint stack, ulong seqBegin = 2, ulong seqEnd = 2)
        {
            long e = SampleLayout.SamplesOffset + HighWater * SampleLayout.SampleEntryBytes;
            U64(e + SampleLayout.SampleSeqBegin, seqBegin);
            U64(e + SampleLayout.SampleAddress, address);
            U64(e + SampleLayout.SampleSize, size);
            U32(e + SampleLayout.SampleStack, stack);
            U64(e + SampleLayout.SampleSeqEnd, seqEnd);
            U32(SampleLayout.OffSamplesHighWater, ++HighWater);
            return this;
        }

        public Region Module(ulong bias, ulong start, ulong end, string path)
        {
            long e = SampleLayout.ModulesOffset + Modules * SampleLayout.ModuleEntryBytes;
            U64(e + SampleLayout.ModuleBase, bias);
            U64(e + SampleLayout.ModuleStart, start);
            U64(e + SampleLayout.ModuleEnd, end);
            U32(e + SampleLayout.ModulePathLength, (uint)path.Length);
            System.Text.Encoding.UTF8.GetBytes(path).CopyTo(Bytes, (int)(e + SampleLayout.ModulePath));
            U32(SampleLayout.OffModulesUsed, ++Modules);
            return this;
        }

        /// <summary>Writes segment + region; <paramref name="cut"/> bytes are left off the end.</summary>
        public string WriteTo(string directory, int cut = 0, ulong? offsetOverride = null, uint version = SampleLayout.Version)
        {
            var segment = new SegmentBuilder().Build();
            ulong offset = (ulong)segment.Length;
            BinaryPrimitives.WriteUInt64LittleEndian(segment.AsSpan(SampleLayout.SegOffRegionOffset), offsetOverride ?? offset);
            BinaryPrimitives.WriteUInt64LittleEndian(segment.AsSpan(SampleLayout.SegOffRegionBytes), (ulong)Bytes.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(segment.AsSpan(SampleLayout.SegOffRegionVersion), version);
            string path = Path.Combine(directory, "4242.kstats");
            byte[] all = segment.Concat(Bytes).ToArray();
            File.WriteAllBytes(path, all[..(all.Length - cut)]);
            return path;
        }
    }

    [Fact]
    public void A_valid_table_is_read_with_weights_stacks_and_modules()
    {
        using var dir = new TempDir();
        var region = new Region().Module(0x1000, 0x2000, 0x9000, "/usr/bin/x").Stack(0x2345, 0x2400)
            .Sample(0x7000_0000, 256, 0).Sample(0x7000_1000, 100_000, 0);
        var read = SampleReader.Read(region.WriteTo(dir.Path));
        Assert.True(read.Ok, read.Detail);
        var table = read.Table!;
        Assert.Equal(2, table.Samples.Count);
        Assert.Equal([0x2345UL, 0x2400UL], table.Stacks[0].Frames);
        Assert.Equal("/usr/bin/x", Assert.Single(table.Modules).Path);
        // size / (1 - exp(-size/mean)): a small block stands for about the mean, a large one for itself.
        Assert.Equal(256 / -double.ExpM1(-256.0 / 4096), table.Weight(table.Samples[0]), 6);
        Assert.Equal(100_000, table.Weight(table.Samples[1]), 0);
        Assert.Equal(0, table.TornEntries + table.GarbageEntries);
    }

    [Fact]
    public void Torn_and_garbage_entries_are_skipped_and_counted()
    {
        using var dir = new TempDir();
        var region = new Region().Stack(0x10)
            .Sample(0x1000, 64, 0)
            .Sample(0x2000, 64, 0, seqBegin: 3, seqEnd: 3)      // being written
            .Sample(0x3000, 64, 0, seqBegin: 4, seqEnd: 2)      // changed while copied
            .Sample(0x4000, 64, stack: 77)                      // no such stack
            .Sample(0x5000, 0, 0)                               // no size
            .Sample(0x6000, 64, SampleLayout.UnknownStack);     // kept: stack table was full
        region.U32(SampleLayout.StacksOffset + SampleLayout.StackEntryBytes + SampleLayout.StackDepth, 99); // a second stack, too deep
        region.U32(SampleLayout.OffStacksUsed, 2);
        var read = SampleReader.Read(region.WriteTo(dir.Path));
        Assert.True(read.Ok, read.Detail);
        Assert.Equal([0x1000UL, 0x6000UL], read.Table!.Samples.Select(s => s.Address).ToArray());
        Assert.Equal(2, read.Table.TornEntries);
        Assert.Equal(3, read.Table.GarbageEntries); // stack 77, size 0, the deep stack
    }

    [Fact]
    public void Tables_that_do_not_fit_are_skipped_with_a_reason()
    {
        using var dir = new TempDir();
        Assert.Equal(SampleReadError.Truncated, SampleReader.Read(new Region().WriteTo(dir.Path, cut: 100)).Error);
        Assert.Equal(SampleReadError.BadVersion, SampleReader.Read(new Region().WriteTo(dir.Path, version: 9)).Error);
        Assert.Equal(SampleReadError.BadLayout, SampleReader.Read(new Region().WriteTo(dir.Path, offsetOverride: 7)).Error);

        var badMagic = new Region();
        badMagic.U64(SampleLayout.OffMagic, 0x1234);
        Assert.Equal(SampleReadError.BadMagic, SampleReader.Read(badMagic.WriteTo(dir.Path)).Error);

        var sizes = new Region();
        sizes.U32(SampleLayout.OffSampleEntryBytes, 40);
        Assert.Equal(SampleReadError.BadLayout, SampleReader.Read(sizes.WriteTo(dir.Path)).Error);

        var overfull = new Region();
        overfull.U32(SampleLayout.OffSamplesHighWater, SampleLayout.SampleCapacity + 1);
        Assert.Equal(SampleReadError.BadLayout, SampleReader.Read(overfull.WriteTo(dir.Path)).Error);

        string noRegion = Path.Combine(dir.Path, "4243.kstats");
        File.WriteAllBytes(noRegion, new SegmentBuilder { Pid = 4243 }.Build());
        Assert.Equal(SampleReadError.Absent, SampleReader.Read(noRegion).Error);
    }

    [Fact]
    public void Random_garbage_in_the_header_and_the_tables_never_throws()
    {
        using var dir = new TempDir();
        var random = new Random(11);
        for (int round = 0; round < 200; round++)
        {
            var region = new Region().Stack(0x10, 0x20).Sample(0x1000, 64, 0).Module(0, 0x10, 0x100, "/x");
            // Scribble over the header's sizes and counts, and over the first entries.
            for (int k = 0; k < 6; k++)
            {
                int at = random.Next(0, k % 2 == 0 ? 128 : (int)SampleLayout.StacksOffset + 2 * SampleLayout.StackEntryBytes);
                region.Bytes[at] = (byte)random.Next(256);
            }
            var read = SampleReader.Read(region.WriteTo(dir.Path, cut: round % 7 == 0 ? random.Next(1, 5000) : 0));
            Assert.True(read.Ok || read.Error != SampleReadError.None);
            if (read.Ok) Assert.All(read.Table!.Samples, s => Assert.True(s.Size > 0));
        }
    }
}
