using Konfiscator.Tool.Profiling;
using Microsoft.AspNetCore.Http;

namespace Konfiscator.Tool.Http;

/// <summary><c>/debug/pprof/heap?pid=PID</c> (or <c>?command=NAME</c>: the newest process of the
/// group; <c>&amp;peak=1</c>: as it was at its peak): a process's heap profile as gzipped
/// profile.proto, the way Go services serve theirs, so <c>go tool pprof http://host:8000/debug/pprof/heap?pid=123</c>
/// works as users know it.
/// A process that has ended is served from <paramref name="ended"/> once the exporter collected
/// its file (the newest such process of the pid or command asked for).</summary>
internal sealed class ProfileEndpoint(string directory, Symbolizer symbolizer, EndedProfiles? ended = null)
{
    public const string HeapPath = "/debug/pprof/heap";

    /// <summary>Shared with the web page's flame graphs.</summary>
    public Symbolizer Symbolizer => symbolizer;

    public async Task<bool> TryHandleAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (request.Path != HeapPath) return false;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "GET, HEAD";
            return true;
        }
        string? pidText = request.Query["pid"];
        string? command = request.Query["command"];
        bool peak = request.Query["peak"] is { Count: > 0 } p && p[0] is "1" or "true";
        int? pid = null;
        if (pidText is not null)
        {
            if (!int.TryParse(pidText, out int value) || value <= 0)
                return await Fail(response, StatusCodes.Status400BadRequest, $"pid must be a positive number, not '{pidText}'");
            pid = value;
        }
        byte[] body;
        try
        {
            var profile = FromDirectory(pid, command, peak);
            var buffer = new MemoryStream();
            PprofWriter.Write(profile, buffer);
            body = buffer.ToArray();
        }
        catch (ToolException e)
        {
            return await Fail(response, StatusCodes.Status404NotFound, e.Message);
        }
        response.ContentType = "application/octet-stream";
        response.Headers.ContentDisposition = "attachment; filename=\"heap.pb.gz\"";
        response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(request.Method)) await response.Body.WriteAsync(body, context.RequestAborted);
        return true;
    }

    /// <summary>A live process's profile, else one whose file is still in the directory, else one
    /// this exporter collected (pid and command as asked: a process that ended is looked for
    /// only when one is named).</summary>
    private HeapProfile FromDirectory(int? pid, string? command, bool peak)
    {
        try
        {
            var segment = ProfileSource.Choose(directory, pid, command);
            return ProfileSource.Load(directory, segment, peak, symbolizer);
        }
        catch (ToolException) when (pid is not null || command is not null)
        {
            var kept = ended?.Find(pid, command, peak, symbolizer);
            if (kept is null) throw;
            return kept;
        }
    }

    private static async Task<bool> Fail(HttpResponse response, int status, string message)
    {
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        await response.WriteAsync($"konfiscator: {message}\n");
        return true;
    }
}
