namespace Konfiscator.Tool.Web;

/// <summary>The page at <c>/</c>: one self-contained HTML file (no script library, no CDN; works
/// offline). Its script lists the processes from /api/processes and, for the chosen one (#PID in
/// the address), inserts the charts the server draws (/svg/PID/*.svg), every two seconds. Process
/// names only ever reach the page as text (textContent) or escaped by the server.</summary>
internal static class WebPage
{
    public const string Html = """
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>konfiscator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { padding: 8px 16px; background: #2c3e50; color: #fff; }
  header a { color: #fff; }
  main { display: flex; gap: 16px; padding: 12px 16px; align-items: flex-start; }
  #list { min-width: 420px; max-height: 90vh; overflow-y: auto; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
  th { background: #ecf0f1; position: sticky; top: 0; }
  td.cmd, th.cmd { text-align: left; max-width: 180px; overflow: hidden; text-overflow: ellipsis; }
  tr.proc { cursor: pointer; }
  tr.proc:hover { background: #f4f8fb; }
  tr.chosen { background: #d6eaf8; }
  #detail h2 { margin: 0 0 8px; font-size: 16px; }
  .chart { background: #fff; border: 1px solid #ddd; margin: 0 0 10px; display: block; }
  .chart .title { font-weight: bold; font-size: 12px; }
  .chart .axis { font-size: 10px; fill: #555; }
  .chart .grid { stroke: #eee; }
  .chart .bar { fill: #16a085; }
  #status { color: #888; }
  #flame { overflow-x: auto; max-width: 100%; }
  #flame svg { display: block; }
</style>
</head>
<body>
<header><b>konfiscator</b> — live heaps · <a href="/metrics">/metrics</a> · <span id="status">loading…</span></header>
<main>
  <section id="list">
    <table>
      <thead><tr><th>pid</th><th class="cmd">command</th><th>in use</th><th>peak</th><th>calls/s</th></tr></thead>
      <tbody id="processes"></tbody>
    </table>
  </section>
  <section id="detail"><p>Choose a process.</p></section>
</main>
<script>
"use strict";
const units = ["B", "KiB", "MiB", "GiB", "TiB"];
function bytes(n) {
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[u];
}
function rate(n) { return n < 1000 ? n.toFixed(0) : n < 1e6 ? (n / 1e3).toFixed(1) + "k" : (n / 1e6).toFixed(1) + "M"; }
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;           // text, never markup: process names are anyone's choice
  if (cls) td.className = cls;
  return td;
}
function chosenPid() { const h = location.hash.slice(1); return /^[0-9]+$/.test(h) ? h : null; }

async function refreshList() {
  const response = await fetch("/api/processes", { cache: "no-store" });
  const data = await response.json();
  const body = document.getElementById("processes");
  const rows = [];
  for (const p of data.processes) {
    const tr = document.createElement("tr");
    tr.className = "proc" + (String(p.pid) === chosenPid() ? " chosen" : "");
    tr.dataset.pid = p.pid;
    tr.append(cell(String(p.pid)), cell(p.command, "cmd"), cell(bytes(p.in_use_bytes)),
              cell(bytes(p.peak_in_use_bytes)), cell(rate(p.calls_per_second)));
    tr.addEventListener("click", () => { location.hash = p.pid; });
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  document.getElementById("status").textContent =
    data.processes.length + " live process" + (data.processes.length === 1 ? "" : "es") + " in " + data.directory;
  return data.processes;
}

async function svg(pid, name) {
  const response = await fetch("/svg/" + pid + "/" + name + ".svg", { cache: "no-store" });
  if (!response.ok) return null;
  // Drawn by the server with every text escaped; parsed as SVG, never as HTML.
  const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  return document.importNode(doc.documentElement, true);
}

async function refreshDetail(processes) {
  const pid = chosenPid();
  const detail = document.getElementById("detail");
  if (!pid) { return; }
  const p = processes.find(x => String(x.pid) === pid);
  if (!p) {
    const message = document.createElement("p");
    message.textContent = "Process " + pid + " is not running (or publishes nothing).";
    detail.replaceChildren(message);
    return;
  }
  const charts = await Promise.all(["in-use", "calls", "sizes", "heap"].map(n => svg(pid, n)));
  const title = document.createElement("h2");
  title.id = "title";
  title.textContent = p.command + " (pid " + p.pid + ")";
  detail.replaceChildren(title, ...charts.filter(c => c), await flame(pid));
}

// The allocation-site flame graph (bytes in use, sampled), or a note saying why there is none.
async function flame(pid) {
  const box = document.createElement("div");
  box.id = "flame";
  box.className = "chart";
  const info = await fetch("/api/process/" + pid, { cache: "no-store" });
  const sampling = info.ok ? (await info.json()).sampling : null;
  let response = null;
  if (sampling && sampling.live_samples > 0)
    response = await fetch("/api/process/" + pid + "/flame.svg", { cache: "no-store" });
  if (response && response.ok) {
    const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    box.append(document.importNode(doc.documentElement, true));
  } else {
    const note = document.createElement("p");
    note.id = "flame-none";
    note.textContent = "No allocation samples (sampling: " + (sampling ? sampling.state : "unknown") +
      "; set by 
""" + Konfiscator.Stats.StatsSchema.SampleBytesVariable + """
), so no flame graph.";
    box.append(note);
  }
  return box;
}

async function refresh() {
  try {
    const processes = await refreshList();
    await refreshDetail(processes);
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    document.getElementById("status").textContent = "cannot reach the exporter: " + e;
  }
}
window.addEventListener("hashchange", refresh);
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
""";
}
