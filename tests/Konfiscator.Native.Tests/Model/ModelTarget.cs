using Konfiscator.Native.Tests.Native;

namespace Konfiscator.Native.Tests.Model;

/// <summary>
/// A library instance driven by the model test, with what the test knows about its hidden
/// process-wide state: the mapping threshold, known exactly only for an instance the model has
/// followed since it was loaded.
/// </summary>
internal sealed class ModelTarget
{
    private ModelTarget(LibKonfiscator lib, bool checkPlacement)
    {
        Lib = lib;
        CheckPlacement = checkPlacement;
    }

    public LibKonfiscator Lib { get; }

    /// <summary>Whether addresses, free lists and regions are checked against the first-fit
    /// model. docs/heap.md promises exact placement only with the thread caches off.</summary>
    public bool CheckPlacement { get; }

    public MappingThreshold Threshold { get; } = new();

    /// <summary>A fresh instance started with KONFISCATOR_TCACHE=0, checked call by call against
    /// the model.</summary>
    public static ModelTarget ExactPlacement() => new(LibKonfiscator.LoadFresh(threadCache: false), checkPlacement: true);

    /// <summary>The default configuration (thread caches on): blocks, patterns, usable sizes and
    /// the heap check are checked; placement is the caches' business.</summary>
    public static ModelTarget WithThreadCaches() => new(LibKonfiscator.LoadFresh(threadCache: true), checkPlacement: false);
}
