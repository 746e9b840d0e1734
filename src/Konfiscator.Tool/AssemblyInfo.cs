// The tool reads /proc, stats segments and uses POSIX signals: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
