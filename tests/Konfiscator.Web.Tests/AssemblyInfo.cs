// Like the tool: Linux only (segments, /proc, signals).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
