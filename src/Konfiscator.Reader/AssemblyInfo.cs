// Segments, /proc and the libc calls used here exist on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
