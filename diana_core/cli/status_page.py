"""The status page's HTML: a static shell that polls ``status.json`` every second (no external assets)."""

WATCH = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>diana watch status</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:20px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ccc;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:24px}.card span{font-size:12px;color:#666}
table{border-collapse:collapse;margin-top:8px}td,th{border:1px solid #ddd;padding:2px 8px;font-size:12px;text-align:left}
#error{color:#b00}
</style></head><body>
<h1>diana watch <small id="uptime"></small></h1>
<div class="cards">
 <div class="card"><b id="seen">-</b><span>seen</span></div>
 <div class="card"><b id="handled">-</b><span>handled</span></div>
 <div class="card"><b id="failed">-</b><span>failed attempts</span></div>
 <div class="card"><b id="retry_queue">-</b><span>retry queue</span></div>
 <div class="card"><b id="dead">-</b><span>dead letters</span></div>
 <div class="card"><b id="handled_per_minute">-</b><span>handled / min</span></div>
 <div class="card"><b id="mean_handling_seconds">-</b><span>mean s / event</span></div>
</div>
<h2>Throughput</h2><div id="chart"></div>
<div id="routes-box" hidden><h2>Routes <small id="unrouted"></small></h2>
<table id="routes"><tr><th>route</th><th>matched</th><th>delivered</th><th>skipped</th><th>retried</th><th>failed</th>
<th>dead</th></tr></table></div>
<h2>Last errors</h2><table id="errors"><tr><th>time</th><th>level</th><th>logger</th><th>message</th></tr></table>
<p id="error"></p>
<script>
const token = new URLSearchParams(location.search).get("token");
const url = "status.json" + (token ? "?token=" + encodeURIComponent(token) : "");
function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
async function refresh() {
  try {
    const s = await (await fetch(url, {cache: "no-store"})).json();
    for (const k of ["seen", "handled", "failed", "retry_queue", "dead", "handled_per_minute",
                     "mean_handling_seconds"]) {
      document.getElementById(k).textContent = s[k] === null ? "-" : s[k];
    }
    document.getElementById("uptime").textContent = "up " + Math.round(s.uptime_seconds) + " s";
    document.getElementById("chart").innerHTML = s.chart_svg;
    const routes = document.getElementById("routes");
    while (routes.rows.length > 1) routes.deleteRow(1);
    for (const r of s.routes || []) {
      const tr = document.createElement("tr");
      for (const k of ["route", "matched", "delivered", "skipped", "retried", "failed", "dead"]) tr.appendChild(cell(r[k]));
      routes.appendChild(tr);
    }
    document.getElementById("routes-box").hidden = !(s.routes && s.routes.length);
    document.getElementById("unrouted").textContent = s.unrouted === null ? "" : "unrouted " + s.unrouted;
    const table = document.getElementById("errors");
    while (table.rows.length > 1) table.deleteRow(1);
    for (const e of s.last_errors) {
      const tr = document.createElement("tr");
      for (const k of ["time", "level", "logger", "message"]) tr.appendChild(cell(e[k]));
      table.appendChild(tr);
    }
    document.getElementById("error").textContent = "";
  } catch (err) { document.getElementById("error").textContent = "status unavailable: " + err; }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""

JOBS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>diana jobs</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:20px}h2{font-size:16px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:2px 8px;font-size:12px;text-align:left}
.job{border:1px solid #ccc;border-radius:6px;padding:8px 14px;margin-bottom:12px}#error{color:#b00}
</style></head><body>
<h1>diana jobs</h1><div id="jobs"></div><p id="error"></p>
<script>
const token = new URLSearchParams(location.search).get("token");
const url = "status.json" + (token ? "?token=" + encodeURIComponent(token) : "");
const KEYS = ["studies", "instances", "started", "last_update", "studies_per_minute", "pseudonymized_studies"];
function row(table, k, v) {
  const tr = table.insertRow(); const th = document.createElement("th"); th.textContent = k; tr.appendChild(th);
  tr.insertCell().textContent = v;
}
async function refresh() {
  try {
    const s = await (await fetch(url, {cache: "no-store"})).json();
    const root = document.getElementById("jobs"); root.textContent = "";
    for (const j of s.jobs) {
      const box = document.createElement("div"); box.className = "job"; box.id = "job-" + j.job;
      const h = document.createElement("h2"); h.textContent = j.job; box.appendChild(h);
      const table = document.createElement("table"); box.appendChild(table);
      if (j.error) { row(table, "error", j.error); root.appendChild(box); continue; }
      for (const k of KEYS) row(table, k, j[k] === null ? "-" : j[k]);
      for (const [k, v] of Object.entries(j.counts)) row(table, "state " + k, v);
      for (const [k, v] of Object.entries(j.failures)) row(table, "failed: " + k, v);
      const chart = document.createElement("div"); chart.innerHTML = j.chart_svg; box.appendChild(chart);
      root.appendChild(box);
    }
    document.getElementById("error").textContent = "";
  } catch (err) { document.getElementById("error").textContent = "status unavailable: " + err; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""
