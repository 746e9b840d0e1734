// The library under test is a Linux shared object loaded by dlopen and LD_PRELOAD: these tests
// are Linux-only by nature.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
