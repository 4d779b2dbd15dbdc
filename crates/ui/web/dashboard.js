// The live dashboard: polls /status every second and draws throughput, requests, KV-cache
// use, prefix-cache hits and latency percentiles (server), or the backends (gateway).
"use strict";
(function () {
  const { el, api, errorMessage, notice, LineChart } = window.hearth;
  const $ = (id) => document.getElementById(id);
  const INTERVAL_MS = 1000;
  const LATENCY_WINDOW = 30; // samples (seconds) the percentiles are taken over
  const history = []; // [{t, status}]
  let charts = null;

  function bytes(n) {
    if (n == null) return "\u2013";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }
  function duration(seconds) {
    if (seconds == null) return "\u2013";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    if (seconds >= 60) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
    return Math.floor(seconds) + " s";
  }
  const ms = (s) => (s == null ? "\u2013" : s < 0.01 ? (s * 1000).toFixed(1) + " ms" : s < 1 ? (s * 1000).toFixed(0) + " ms" : s.toFixed(2) + " s");
  const pct = (x) => (x == null ? "\u2013" : (x * 100).toFixed(1) + "%");

  /** Quantile q of the observations between two cumulative histogram snapshots. */
  function quantile(now, before, q) {
    if (!now) return null;
    const counts = now.cumulative.map((c, i) => c - (before ? before.cumulative[i] : 0));
    const total = now.count - (before ? before.count : 0);
    if (total <= 0) return null;
    const rank = q * total;
    let lower = 0, below = 0;
    for (let i = 0; i < now.bounds.length; i++) {
      if (counts[i] >= rank) {
        const inBucket = counts[i] - below;
        const upper = now.bounds[i];
        return inBucket > 0 ? lower + ((upper - lower) * (rank - below)) / inBucket : upper;
      }
      lower = now.bounds[i];
      below = counts[i];
    }
    return now.bounds[now.bounds.length - 1];
  }

  function rate(now, before, pick) {
    if (!before) return null;
    const dt = now.t - before.t;
    return dt > 0 ? Math.max(0, pick(now.status) - pick(before.status)) / dt : null;
  }

  function fact(label, value, detail, wide) {
    const box = el("div", wide ? "fact wide" : "fact");
    box.append(el("div", "label", label), el("div", "value", value));
    if (detail) box.append(el("div", "detail", detail));
    return box;
  }

  function serverFacts(s) {
    const m = s.model || {}, kv = s.kv_cache || {}, e = s.engine || {};
    const settings = Object.entries(e.settings || {}).map(([k, v]) => k + " " + v).join(" \u00b7 ");
    return [
      fact("model", m.id || "loading", m.root),
      fact("weights in memory", bytes(m.weights_bytes), m.vocab_size ? "vocabulary " + m.vocab_size + " \u00b7 context " + m.max_model_len : ""),
      fact("KV cache", kv.tokens != null ? kv.tokens.toLocaleString() + " tokens" : "\u2013",
        kv.blocks != null ? kv.blocks + " blocks of " + kv.block_size + " \u00b7 " + bytes(kv.bytes) + " \u00b7 " + (kv.max_concurrency || 0).toFixed(1) + "x max concurrency" : ""),
      fact("kernels", e.kernels || "\u2013", e.threads ? e.threads + " threads \u00b7 max " + e.max_num_seqs + " sequences" : ""),
      fact("flags", settings || "\u2013", "", true),
      fact("up", duration(s.uptime_s), "hearth " + s.version + " \u00b7 " + s.state),
    ];
  }

  function gatewayFacts(s) {
    const up = s.backends.filter((b) => b.healthy && b.breaker !== "open").length;
    return [
      fact("models", String(s.models.length), s.models.join(", ")),
      fact("backends up", up + " of " + s.backends.length),
      fact("requests", String(s.requests.served), s.requests.failed + " failed"),
      fact("up", duration(s.uptime_s), "hearth gateway " + s.version),
    ];
  }

  function makeServerCharts(box) {
    return {
      tokens: new LineChart(box, "Tokens per second", [
        { name: "generated", color: "--chart-1" }, { name: "prompt", color: "--chart-2" }]),
      requests: new LineChart(box, "Requests", [
        { name: "running", color: "--chart-1", format: (v) => v.toFixed(0) }, { name: "waiting", color: "--chart-2", format: (v) => v.toFixed(0) }]),
      cache: new LineChart(box, "KV cache use and prefix-cache hits", [
        { name: "KV use", color: "--chart-1", format: pct }, { name: "prefix hit rate", color: "--chart-3", format: pct }], { max: 1 }),
      ttft: new LineChart(box, "Time to first token (last 30 s)", [
        { name: "p50", color: "--chart-1", format: ms }, { name: "p95", color: "--chart-2", format: ms }], { axis: ms }),
      itl: new LineChart(box, "Inter-token latency (last 30 s)", [
        { name: "p50", color: "--chart-1", format: ms }, { name: "p95", color: "--chart-2", format: ms }], { axis: ms }),
    };
  }

  function makeGatewayCharts(box) {
    return {
      throughput: new LineChart(box, "Requests per second", [{ name: "served", color: "--chart-1" }, { name: "failed", color: "--chart-2" }]),
      inflight: new LineChart(box, "In flight", [{ name: "all backends", color: "--chart-1", format: (v) => v.toFixed(0) }]),
    };
  }

  function updateServer(now, before, windowStart) {
    const s = now.status;
    const hits = before && s.prefix_cache.queries > before.status.prefix_cache.queries
      ? (s.prefix_cache.hits - before.status.prefix_cache.hits) / (s.prefix_cache.queries - before.status.prefix_cache.queries) : null;
    const lat = s.latency || {}, old = windowStart ? windowStart.status.latency || {} : null;
    charts.tokens.push(now.t, [rate(now, before, (x) => x.tokens.generation), rate(now, before, (x) => x.tokens.prompt)]);
    charts.requests.push(now.t, [s.requests.running, s.requests.waiting]);
    charts.cache.push(now.t, [s.kv_cache.usage, hits]);
    charts.ttft.push(now.t, [quantile(lat.ttft_s, old && old.ttft_s, 0.5), quantile(lat.ttft_s, old && old.ttft_s, 0.95)]);
    charts.itl.push(now.t, [quantile(lat.itl_s, old && old.itl_s, 0.5), quantile(lat.itl_s, old && old.itl_s, 0.95)]);
  }

  function updateGateway(now, before, windowStart) {
    const s = now.status;
    charts.throughput.push(now.t, [rate(now, before, (x) => x.requests.served), rate(now, before, (x) => x.requests.failed)]);
    charts.inflight.push(now.t, [s.backends.reduce((n, b) => n + b.in_flight, 0)]);
    const rows = s.backends.map((b) => {
      const old = windowStart && windowStart.status.backends.find((x) => x.name === b.name);
      const tr = el("tr");
      const state = b.healthy ? "up" : "down";
      const cells = [b.name, b.models.join(", "), state, b.breaker, String(b.in_flight),
        ms(quantile(b.latency_s, old && old.latency_s, 0.5)), ms(quantile(b.latency_s, old && old.latency_s, 0.95)),
        String(b.requests), b.reported ? String(b.reported.waiting) : "\u2013", b.reported ? pct(b.reported.kv_usage) : "\u2013"];
      cells.forEach((text, i) => {
        const td = el("td", "", text);
        if (i === 2 || i === 3) {
          const span = el("span", "badge " + ((i === 2 ? b.healthy : b.breaker === "closed") ? "ok" : "bad"), text);
          td.replaceChildren(span);
        }
        tr.append(td);
      });
      return tr;
    });
    $("backends").querySelector("tbody").replaceChildren(...rows);
  }

  async function poll() {
    try {
      const response = await api("/status", { cache: "no-store" });
      if (!response.ok) throw new Error(await errorMessage(response));
      const status = await response.json();
      const now = { t: performance.now() / 1000, status };
      history.push(now);
      if (history.length > LATENCY_WINDOW + 1) history.shift();
      const before = history.length > 1 ? history[history.length - 2] : null;
      const windowStart = history.length > 1 ? history[0] : null;
      const gateway = status.kind === "gateway";
      if (!charts) {
        charts = gateway ? makeGatewayCharts($("charts")) : makeServerCharts($("charts"));
        $("kind").textContent = gateway ? "gateway dashboard" : "server dashboard";
        $("backends").classList.toggle("hidden", !gateway);
      }
      $("facts").replaceChildren(...(gateway ? gatewayFacts(status) : serverFacts(status)));
      if (gateway) updateGateway(now, before, windowStart);
      else if (status.model) updateServer(now, before, windowStart);
      $("live").textContent = "live";
      $("live").className = "badge ok";
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
      notice("");
    } catch (e) {
      $("live").textContent = "offline";
      $("live").className = "badge bad";
      notice("Cannot read /status: " + e.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    hearth.setupThemeButton();
    poll();
    setInterval(poll, INTERVAL_MS);
  });
})();
