// The harness runs programs with LD_PRELOAD and reads wait4() figures: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
