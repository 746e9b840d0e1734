namespace Konfiscator.Tool.Tests.Support;

/// <summary>A test of an optional tool (one the README lists as needed only for that test): when
/// the program is not on PATH the test is skipped with a reason naming the program and the package
/// that provides it, so that a machine set up without it reports exactly what is missing.</summary>
public sealed class NeedsProgramFactAttribute : FactAttribute
{
    public NeedsProgramFactAttribute(string program, string package)
    {
        if (PrometheusServer.Which(program) is null)
            Skip = $"`{program}` is not on PATH: install {package} (README: Prerequisites; .ci/run installs it)";
    }
}
