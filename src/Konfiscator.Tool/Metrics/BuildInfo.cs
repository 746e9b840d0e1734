using System.Reflection;
using Prometheus;

namespace Konfiscator.Tool.Metrics;

/// <summary><c>konfiscator_build_info{version, revision, dotnet} 1</c>, the convention exporters
/// follow so that a dashboard can show which build is serving.</summary>
internal static class BuildInfo
{
    public const string Name = "konfiscator_build_info";

    /// <summary>The tool's version ("0.1.0") and the commit it was built from, if the build knew it.</summary>
    public static (string Version, string Revision) Get()
    {
        string informational = typeof(BuildInfo).Assembly
            .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        int plus = informational.IndexOf('+');
        return plus < 0 ? (informational, "") : (informational[..plus], informational[(plus + 1)..]);
    }

    public static void Register(IMetricFactory factory)
    {
        var (version, revision) = Get();
        factory.CreateGauge(Name, "A constant 1, labelled with the version of the konfiscator tool serving these metrics.",
                new GaugeConfiguration { LabelNames = ["version", "revision", "dotnet"] })
            .WithLabels(version, revision, Environment.Version.ToString())
            .Set(1);
    }
}
