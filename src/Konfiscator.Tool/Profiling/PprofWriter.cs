using System.IO.Compression;
using Google.Protobuf;

namespace Konfiscator.Tool.Profiling;

/// <summary>Writes a <see cref="HeapProfile"/> as a gzipped profile.proto, the format of
/// <c>go tool pprof</c>, with Google.Protobuf's CodedOutputStream. The messages are written by hand
/// from the published schema's field numbers (github.com/google/pprof, proto/profile.proto):
/// Profile{1 sample_type, 2 sample, 3 mapping, 4 location, 5 function, 6 string_table,
/// 9 time_nanos, 11 period_type, 12 period, 14 default_sample_type}, ValueType{1 type, 2 unit},
/// Sample{1 location_id, 2 value}, Mapping{1 id, 2 memory_start, 3 memory_limit, 4 file_offset,
/// 5 filename, 7 has_functions}, Location{1 id, 2 mapping_id, 3 address, 4 line},
/// Line{1 function_id}, Function{1 id, 2 name, 3 system_name, 4 filename}.
/// Sample types are those of Go's heap profiles: alloc_objects, alloc_space, inuse_objects,
/// inuse_space (the default), so pprof's -sample_index names work as users know them.</summary>
internal static class PprofWriter
{
    public static void Write(HeapProfile profile, Stream destination)
    {
        using var gzip = new GZipStream(destination, CompressionLevel.Optimal, leaveOpen: true);
        gzip.Write(Encode(profile));
    }

    public static byte[] Encode(HeapProfile profile)
    {
        var strings = new List<string> { "" };
        var stringIndex = new Dictionary<string, long> { [""] = 0 };
        long S(string s)
        {
            if (!stringIndex.TryGetValue(s, out long i))
            {
                i = strings.Count;
                strings.Add(s);
                stringIndex[s] = i;
            }
            return i;
        }

        var mappingIds = new Dictionary<string, ulong>();
        var functionIds = new Dictionary<string, ulong>();
        var locationIds = new Dictionary<ulong, ulong>();
        var mappings = new List<byte[]>();
        var functions = new List<byte[]>();
        var locations = new List<byte[]>();
        var moduleByPath = profile.Table.Modules.GroupBy(m => m.Path).ToDictionary(g => g.Key, g => g.Last());

        ulong Mapping(ProfileFrame f)
        {
            if (f.Module.Length == 0) return 0;
            if (mappingIds.TryGetValue(f.Module, out ulong id)) return id;
            id = (ulong)mappingIds.Count + 1;
            mappingIds[f.Module] = id;
            var m = moduleByPath[f.Module];
            mappings.Add(Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.Varint); o.WriteUInt64(id);
                o.WriteTag(2, WireFormat.WireType.Varint); o.WriteUInt64(m.Start);
                o.WriteTag(3, WireFormat.WireType.Varint); o.WriteUInt64(m.End);
                o.WriteTag(4, WireFormat.WireType.Varint); o.WriteUInt64(m.Start - m.LoadBias);
                o.WriteTag(5, WireFormat.WireType.Varint); o.WriteInt64(S(f.Module));
                o.WriteTag(7, WireFormat.WireType.Varint); o.WriteBool(true);
            }));
            return id;
        }

        ulong Function(string name, string file)
        {
            string key = name + "\0" + file;
            if (functionIds.TryGetValue(key, out ulong id)) return id;
            id = (ulong)functionIds.Count + 1;
            functionIds[key] = id;
            functions.Add(Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.Varint); o.WriteUInt64(id);
                o.WriteTag(2, WireFormat.WireType.Varint); o.WriteInt64(S(name));
                o.WriteTag(3, WireFormat.WireType.Varint); o.WriteInt64(S(name));
                o.WriteTag(4, WireFormat.WireType.Varint); o.WriteInt64(S(file));
            }));
            return id;
        }

        ulong Location(ProfileFrame f)
        {
            ulong key = f.Address != 0 ? f.Address : (ulong)(0x8000_0000_0000_0000 | (ulong)S(f.Display));
            if (locationIds.TryGetValue(key, out ulong id)) return id;
            id = (ulong)locationIds.Count + 1;
            locationIds[key] = id;
            ulong mapping = Mapping(f);
            ulong function = Function(f.Display, f.Module);
            locations.Add(Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.Varint); o.WriteUInt64(id);
                if (mapping != 0) { o.WriteTag(2, WireFormat.WireType.Varint); o.WriteUInt64(mapping); }
                if (f.Address != 0) { o.WriteTag(3, WireFormat.WireType.Varint); o.WriteUInt64(f.Address - 1); }
                var line = Message(l => { l.WriteTag(1, WireFormat.WireType.Varint); l.WriteUInt64(function); });
                o.WriteTag(4, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFrom(line));
            }));
            return id;
        }

        var samples = new List<byte[]>();
        foreach (var stack in profile.Stacks)
        {
            var ids = stack.Frames.Select(Location).ToList();
            long[] values =
            [
                (long)Math.Round(stack.AllocObjects), (long)Math.Round(stack.AllocBytes),
                (long)Math.Round(stack.InUseObjects), (long)Math.Round(stack.InUseBytes),
            ];
            samples.Add(Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(ByteString.CopyFrom(Packed(p => { foreach (ulong id in ids) p.WriteUInt64(id); })));
                o.WriteTag(2, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(ByteString.CopyFrom(Packed(p => { foreach (long v in values) p.WriteInt64(v); })));
            }));
        }

        byte[] ValueType(string type, string unit)
        {
            long t = S(type), u = S(unit);
            return Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.Varint); o.WriteInt64(t);
                o.WriteTag(2, WireFormat.WireType.Varint); o.WriteInt64(u);
            });
        }
        var sampleTypes = new[]
        {
            ValueType("alloc_objects", "count"), ValueType("alloc_space", "bytes"),
            ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes"),
        };
        var periodType = ValueType("space", "bytes");
        long defaultType = S("inuse_space");

        return Message(o =>
        {
            foreach (var t in sampleTypes) Field(o, 1, t);
            foreach (var s in samples) Field(o, 2, s);
            foreach (var m in mappings) Field(o, 3, m);
            foreach (var l in locations) Field(o, 4, l);
            foreach (var f in functions) Field(o, 5, f);
            foreach (string s in strings) { o.WriteTag(6, WireFormat.WireType.LengthDelimited); o.WriteString(s); }
            o.WriteTag(9, WireFormat.WireType.Varint); o.WriteInt64(profile.Time.ToUnixTimeMilliseconds() * 1_000_000);
            Field(o, 11, periodType);
            o.WriteTag(12, WireFormat.WireType.Varint); o.WriteInt64((long)profile.MeanBytes);
            o.WriteTag(14, WireFormat.WireType.Varint); o.WriteInt64(defaultType);
        });
    }

    private static void Field(CodedOutputStream o, int number, byte[] message)
    {
        o.WriteTag(number, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(message));
    }

    private static byte[] Message(Action<CodedOutputStream> write)
    {
        var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        write(output);
        output.Flush();
        return buffer.ToArray();
    }

    private static byte[] Packed(Action<CodedOutputStream> write) => Message(write);
}
