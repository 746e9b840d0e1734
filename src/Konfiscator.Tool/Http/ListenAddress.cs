using System.Globalization;
using System.Net;

namespace Konfiscator.Tool.Http;

/// <summary>Where to serve: <c>ADDR:PORT</c>. <c>:PORT</c>, <c>*:PORT</c> or a bare <c>PORT</c> means
/// every interface (IPv4 and IPv6), as the seed's exporter did on :8000; <c>0.0.0.0:PORT</c> every
/// IPv4 interface, <c>[::]:PORT</c> every IPv6 one; <c>localhost:PORT</c> the loopback addresses;
/// otherwise an IP address (IPv6 in brackets). Port 0 picks a free port.</summary>
internal sealed record ListenAddress(IPAddress? Address, bool Localhost, int Port)
{
    public const string Default = ":8000";

    public static bool TryParse(string text, out ListenAddress? address, out string error)
    {
        address = null;
        error = "";
        text = text.Trim();
        string host, portText;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = $"'{text}' is not ADDR:PORT (an IPv6 address goes in brackets: [::1]:8000)";
                return false;
            }
            host = text[1..close];
            portText = text[(close + 2)..];
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon < 0)
            {
                host = "";
                portText = text;
            }
            else
            {
                host = text[..colon];
                portText = text[(colon + 1)..];
                if (host.Contains(':'))
                {
                    error = $"'{text}': put an IPv6 address in brackets, e.g. [::1]:8000";
                    return false;
                }
            }
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            error = $"'{text}' has no valid port (expected ADDR:PORT, e.g. 127.0.0.1:8000 or :8000)";
            return false;
        }
        if (host is "" or "*" or "+")
        {
            address = new ListenAddress(null, false, port);
            return true;
        }
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = new ListenAddress(null, true, port);
            return true;
        }
        if (!IPAddress.TryParse(host, out var ip))
        {
            error = $"'{host}' is not an IP address (use an address such as 127.0.0.1, localhost, or :PORT for all interfaces)";
            return false;
        }
        address = new ListenAddress(ip, false, port);
        return true;
    }

    public override string ToString() =>
        Localhost ? $"localhost:{Port}"
        : Address is null ? $":{Port}"
        : Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]:{Port}"
        : $"{Address}:{Port}";
}
