// Like the reader: Linux only (segments, /proc).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
