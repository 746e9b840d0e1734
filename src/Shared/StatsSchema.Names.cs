// The names the library, the reader, the tool and the bench engine must spell alike: segment
// file names, the default stats directory, the KONFISCATOR_* settings. The other half of
// StatsSchema (StatsSchema.cs, the figures); a file of its own so that the bench engine,
// which never reads a segment, compiles these names without the figure table.
// Only const strings: compiled into the library too (no runtime).

namespace Konfiscator.Stats
{
    internal static partial class StatsSchema
    {
        /// <summary>Segment files are &lt;pid&gt;.kstats, or &lt;pid&gt;.&lt;gen&gt;.kstats for a later image.</summary>
        public const string SegmentSuffix = ".kstats";
        /// <summary>The exporter's claim on a directory ("&lt;pid&gt; &lt;starttime&gt;\n").</summary>
        public const string ExporterPidFile = "exporter.pid";
        /// <summary>The default stats directory is this prefix followed by the effective uid.</summary>
        public const string DefaultDirectoryPrefix = "/dev/shm/konfiscator-";

        /// <summary>Switch: publish a segment (on by default).</summary>
        public const string PublishVariable = "KONFISCATOR_STATS";
        /// <summary>Where segments go instead of the default directory.</summary>
        public const string DirectoryVariable = "KONFISCATOR_STATS_DIR";
        /// <summary>Switch: thread caches (on by default).</summary>
        public const string ThreadCacheVariable = "KONFISCATOR_TCACHE";
        /// <summary>Mean bytes between sampled allocations (0: no sampling).</summary>
        public const string SampleBytesVariable = "KONFISCATOR_SAMPLE_BYTES";
        /// <summary>Leak report at exit: "1" for stderr, or a path to append to.</summary>
        public const string LeaksVariable = "KONFISCATOR_LEAKS";
        /// <summary>Switch: a short summary on stderr at exit (off by default).</summary>
        public const string ShowStatsVariable = "KONFISCATOR_SHOW_STATS";
    }
}
