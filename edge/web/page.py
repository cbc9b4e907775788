"""The single page of the live view: inline HTML/CSS/JS, no external resources (works offline)."""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edge-action live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:0;background:#111;color:#eee}
 header{padding:8px 14px;background:#222;display:flex;gap:18px;align-items:baseline}
 header h1{font-size:16px;margin:0} a{color:#8cf}
 main{display:grid;grid-template-columns:1fr 320px;gap:12px;padding:12px}
 #grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
 .cam{background:#1c1c1c;border:1px solid #333;border-radius:6px;padding:8px}
 .cam h2{font-size:14px;margin:0 0 6px} .cam img{width:100%;background:#000;display:block;min-height:60px}
 .bar{display:flex;align-items:center;gap:6px;margin:2px 0;font-size:12px}
 .bar span.l{width:120px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
 .bar div.b{height:10px;background:#4a9;border-radius:2px}
 .active{color:#fc6} canvas{width:100%;height:90px;background:#151515;margin-top:6px}
 .stats{font-size:11px;color:#aaa;margin-top:4px}
 #events{list-style:none;margin:0;padding:0;font-size:12px}
 #events li{border-bottom:1px solid #333;padding:4px 0}
 .ev-start{color:#6f6}.ev-end{color:#f88}.ev-update{color:#aaa}
</style></head>
<body>
<header><h1>edge-action live</h1><span id="status">connecting...</span><a id="metrics" href="metrics">/metrics</a></header>
<main><section id="grid"></section>
<aside><h2 style="font-size:14px">Recent events</h2><ul id="events"></ul></aside></main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const q = (p) => token ? p + (p.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : p;
document.getElementById("metrics").href = q("metrics");
const COLORS = ["#4af","#fa4","#4f8","#f4a","#aaf","#ff6","#6ff"];
const cams = {};
let lastEvent = 0;

function el(tag, attrs, text){ const e = document.createElement(tag);
  for (const k in (attrs||{})) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }

function cameraCard(name){
  const card = el("div", {"class": "cam", "data-camera": name});
  card.appendChild(el("h2", {}, name));
  const img = el("img", {alt: "camera " + name, src: q("stream/" + encodeURIComponent(name) + ".mjpg")});
  card.appendChild(img);
  const active = el("div", {"class": "active"}); card.appendChild(active);
  const bars = el("div", {"class": "bars"}); card.appendChild(bars);
  const canvas = el("canvas", {width: 340, height: 90, title: "per-stage latency (ms), last predictions"});
  card.appendChild(canvas);
  const legend = el("div", {"class": "stats legend"}); card.appendChild(legend);
  const stats = el("div", {"class": "stats"}); card.appendChild(stats);
  document.getElementById("grid").appendChild(card);
  return {card, img, active, bars, canvas, legend, stats};
}

function drawBars(c, top){
  c.bars.textContent = "";
  for (const t of top){
    const row = el("div", {"class": "bar"});
    row.appendChild(el("span", {"class": "l"}, t.label));
    const b = el("div", {"class": "b"}); b.style.width = Math.round(150 * t.score) + "px"; row.appendChild(b);
    row.appendChild(el("span", {}, t.score.toFixed(2)));
    c.bars.appendChild(row);
  }
}

function drawLatency(c, hist){
  const ctx = c.canvas.getContext("2d"), W = c.canvas.width, H = c.canvas.height;
  ctx.clearRect(0, 0, W, H);
  if (!hist.length) return;
  const stages = Object.keys(hist[hist.length - 1]);
  let max = 0.001; for (const h of hist) for (const s of stages) max = Math.max(max, h[s] || 0);
  c.legend.textContent = "";
  stages.forEach((s, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length]; ctx.beginPath();
    hist.forEach((h, j) => { const x = hist.length > 1 ? j * (W - 1) / (hist.length - 1) : 0;
      const y = H - 2 - (H - 12) * (h[s] || 0) / max; j ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
    const key = el("span", {}, s + " " + (hist[hist.length - 1][s] || 0).toFixed(1) + "ms  ");
    key.style.color = COLORS[i % COLORS.length]; c.legend.appendChild(key);
  });
  ctx.fillStyle = "#888"; ctx.fillText(max.toFixed(1) + " ms", 4, 10);
}

async function pollState(){
  try {
    const r = await fetch(q("api/state"), {cache: "no-store"});
    if (r.status === 401) { document.getElementById("status").textContent = "wrong or missing token"; return; }
    const s = await r.json();
    for (const name of Object.keys(s.cameras)){
      const c = cams[name] || (cams[name] = cameraCard(name));
      const cs = s.cameras[name];
      drawBars(c, cs.top);
      c.active.textContent = cs.active.length ? "active: " + cs.active.join(", ") : "idle";
      drawLatency(c, cs.latency_ms);
      const st = Object.assign({predictions: cs.predictions}, cs.stats);
      c.stats.textContent = Object.entries(st).map(([k, v]) => k + " " + v).join("  ");
    }
    document.getElementById("status").textContent = Object.keys(s.cameras).length + " camera(s), up " + s.uptime_s + " s";
  } catch (e) { document.getElementById("status").textContent = "disconnected: " + e; }
}

async function pollEvents(){
  try {
    const r = await fetch(q("api/events?after=" + lastEvent), {cache: "no-store"});
    if (!r.ok) return;
    const list = document.getElementById("events");
    for (const ev of (await r.json()).events){
      lastEvent = Math.max(lastEvent, ev.id);
      const t = ev.wall_time ? new Date(ev.wall_time * 1000).toLocaleTimeString() : "t=" + ev.stream_time;
      const li = el("li", {"class": "ev-" + ev.event, "data-event": ev.event},
        t + "  " + ev.camera + "  " + ev.event + "  " + ev.label + "  " + (ev.confidence || 0).toFixed(2) +
        (ev.clip ? "  clip: " + ev.clip.split("/").pop() : ""));
      list.insertBefore(li, list.firstChild);
      while (list.children.length > 50) list.removeChild(list.lastChild);
    }
  } catch (e) {}
}

pollState(); pollEvents();
setInterval(pollState, 1000); setInterval(pollEvents, 1000);
</script></body></html>
"""
