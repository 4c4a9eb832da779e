// pikube status page: draws /api/summary and redraws it on every Server-Sent Event.
// Plain DOM (textContent only, never innerHTML, so no object name can inject markup); falls back to
// polling the JSON every 2 s while the event stream is unavailable.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const POLL_MS = 2000;
  const SSE_RETRY_MS = 30000;
  let skewMs = 0; // master clock minus ours: ages are computed on the master's clock
  let lastUpdate = 0;
  let pollTimer = null;
  let live = false;
  let lastSummary = null;
  let showAllEvents = false;
  const EVENTS_SHOWN = 8;

  // --- small helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "width") node.style.width = v; // CSSOM: allowed by the page's CSP, style="" is not
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function age(ts) {
    if (!ts) return "";
    const seconds = Math.max(0, (Date.now() + skewMs - Date.parse(ts)) / 1000);
    if (seconds < 60) return Math.floor(seconds) + "s";
    const m = Math.floor(seconds / 60);
    if (m < 60) return m + "m";
    const h = Math.floor(m / 60);
    if (h < 48) return h + "h" + (h < 10 && m % 60 ? (m % 60) + "m" : "");
    return Math.floor(h / 24) + "d";
  }

  function ageEl(ts, prefix) {
    return el("span", { class: "age", "data-t": ts || "", "data-prefix": prefix || "" }, (prefix || "") + age(ts));
  }

  function cores(millis) {
    const c = millis / 1000;
    return (c >= 10 || Number.isInteger(c) ? c.toFixed(0) : c.toFixed(c < 1 ? 2 : 1)).replace(/\.?0+$/, "") || "0";
  }

  function bytes(n) {
    const units = ["B", "Ki", "Mi", "Gi", "Ti"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)).replace(/\.0$/, "") + " " + units[i];
  }

  function meter(label, used, total, fmt) {
    const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
    const cls = pct >= 90 ? "bar full" : pct >= 70 ? "bar high" : "bar";
    return el("div", { class: "meter", title: total > 0 ? pct.toFixed(0) + "% requested" : "" },
      el("span", { class: "label", text: label }),
      el("div", { class: cls }, el("span", { width: pct.toFixed(1) + "%" })),
      el("span", { text: fmt(used) + " / " + fmt(total) }));
  }

  function pill(text, tone, title) {
    return el("span", { class: "pill tone-" + tone, title: title || null, text: text });
  }

  function table(headers, rows) {
    if (!rows.length) return el("p", { class: "empty", text: "None." });
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
      el("tbody", {}, rows));
  }

  function cell(label, ...children) {
    return el("td", { "data-label": label }, ...children);
  }

  // --- usage plots (/api/usage, fetched every 15 s; the board's agent samples that often) ------------
  const USAGE_MS = 15000;
  const SVG = "http://www.w3.org/2000/svg";
  const THROTTLED_NOW = 0xf; // under-voltage, frequency capped, throttled, soft temperature limit
  let usage = { boards: {}, pods: {} };

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  // One sparkline: `values` (null for a gap) over the last hour, scaled to [0, max]; `marks` flags points.
  function sparkline(label, values, max, fmt, cls, marks) {
    const W = 120, H = 28;
    const n = values.length;
    const x = (i) => (n > 1 ? (i / (n - 1)) * W : W).toFixed(1);
    const y = (v) => (H - 1 - Math.min(1, Math.max(0, v / max)) * (H - 2)).toFixed(1);
    let d = "";
    values.forEach((v, i) => { if (v !== null) d += (d && values[i - 1] !== null ? "L" : "M") + x(i) + "," + y(v); });
    const dots = (marks || []).map((m, i) => (m && values[i] !== null
      ? svg("circle", { cx: x(i), cy: y(values[i]), r: "2", class: "mark" }) : null)).filter(Boolean);
    const last = [...values].reverse().find((v) => v !== null);
    return el("div", { class: "plot " + cls, "data-plot": cls },
      el("span", { class: "label", text: label }),
      svg("svg", { viewBox: "0 0 " + W + " " + H, width: String(W), height: String(H), role: "img",
        "aria-label": label + " over the last hour" },
      svg("path", { d: d || "M0," + H, class: "line" }), ...dots),
      el("span", { class: "now", text: last === undefined ? "—" : fmt(last) }));
  }

  function plots(b) {
    const points = usage.boards[b.name] || [];
    if (!points.length) return null;
    const cpuMax = Math.max(1, b.cpu.allocatable) * 1e6; // millicores → nanocores
    const memMax = Math.max(1, b.memory.allocatable);
    const flagged = points.map((p) => ((p.throttled || 0) & THROTTLED_NOW) !== 0);
    return el("div", { class: "plots", title: "last hour, one point per " + USAGE_MS / 1000 + " s" },
      sparkline("CPU use", points.map((p) => p.cpu), cpuMax, (v) => ((v / cpuMax) * 100).toFixed(0) + "%", "cpu"),
      sparkline("Mem use", points.map((p) => p.memory), memMax, (v) => bytes(v), "mem"),
      points.some((p) => p.temperature !== null)
        ? sparkline("°C", points.map((p) => p.temperature), 90, (v) => v.toFixed(1) + " °C", "temp", flagged) : null,
      flagged.some(Boolean) ? pill("throttled in the last hour", "bad") : null);
  }

  async function fetchUsage() {
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const r = await fetch("api/usage", { headers, cache: "no-store" });
      if (!r.ok) return;
      usage = await r.json();
      if (lastSummary) render(lastSummary);
    } catch (err) {
      // the summary's connection state tells the viewer about a lost master
    }
  }

  // --- sections ------------------------------------------------------------------------------
  function boardCard(b) {
    const badges = [pill(b.ready, b.ready === "Ready" ? "ok" : "bad")];
    if (!b.schedulable) badges.push(pill("cordoned", "warn"));
    if (b.temperature) {
      const t = b.temperature;
      badges.push(pill(t.celsius.toFixed(1) + " °C", t.level, "SoC temperature"));
    }
    for (const f of b.throttling) {
      badges.push(pill(f.flag + (f.now ? "" : " (since boot)"), f.now ? "bad" : "warn",
        "Raspberry Pi firmware: " + (f.now ? "happening now" : "happened since boot")));
    }
    for (const p of b.pressure) badges.push(pill(p, "warn"));
    const versions = [b.kubelet && "kubelet " + b.kubelet, b.runtime, b.kernel && "kernel " + b.kernel, b.os]
      .filter(Boolean).join(" · ");
    return el("article", { class: "panel board tone-" + b.tone, "data-board": b.name, "data-ready": b.ready },
      el("div", { class: "board-head" },
        el("span", { class: "board-name", text: b.name }),
        el("span", { class: "role " + b.role, text: b.role })),
      el("div", { class: "model", text: [b.model || "unknown board", b.arch].filter(Boolean).join(" · ") }),
      el("div", { class: "badges" }, badges),
      b.ready !== "Ready" && b.readyReason ? el("div", { class: "reason", text: b.readyReason }) : null,
      meter("CPU", b.cpu.requested, b.cpu.allocatable, cores),
      meter("Memory", b.memory.requested, b.memory.allocatable, bytes),
      plots(b),
      el("div", { class: "facts" },
        el("span", {}, el("b", { text: String(b.pods) }), " / " + b.podCapacity + " pods"),
        el("span", {}, ageEl(b.created, "up ")),
        b.address ? el("span", { class: "mono", text: b.address }) : null),
      versions ? el("div", { class: "versions", text: versions }) : null);
  }

  function podUsage(p) {
    const u = usage.pods[p.namespace + "/" + p.name];
    if (!u) return null;
    return el("span", { class: "pod-usage mono", title: "CPU and memory now (working set)",
      text: Math.round(u.cpu / 1e6) + "m · " + bytes(u.memory) });
  }

  function podRow(p) {
    return el("li", { class: "pod tone-" + p.tone, "data-pod": p.namespace + "/" + p.name, "data-status": p.status,
      title: [p.owner, p.ip].filter(Boolean).join(" · ") || null },
    el("span", { class: "pod-name" }, p.namespace !== "default" ? el("span", { class: "ns", text: p.namespace + "/" }) : null,
      p.name),
    p.restarts ? el("span", { class: "restarts", title: "restarts", text: "↻" + p.restarts }) : null,
    podUsage(p),
    el("span", { class: "pod-ready", text: p.ready }),
    el("span", { class: "pod-status", text: p.status }));
  }

  function podGroup(g, boardsByName) {
    const b = boardsByName[g.board];
    const down = b && b.ready !== "Ready";
    return el("div", { class: "panel podgroup" + (down ? " down" : ""), "data-pods-of": g.board },
      el("h3", {}, g.board || "Not scheduled", el("span", { class: "n", text: "(" + g.pods.length + ")" }),
        down ? pill("NotReady", "bad") : null),
      down && g.pods.length ? el("p", { class: "reason", text: "Pod states as last reported by the board." }) : null,
      g.pods.length ? el("ul", { class: "pods" }, g.pods.map(podRow)) : el("p", { class: "empty", text: "No pods." }));
  }

  function workloadRow(w) {
    const pct = w.desired > 0 ? Math.min(100, (w.ready / w.desired) * 100) : 100;
    return el("tr", { "data-workload": w.kind + "/" + w.namespace + "/" + w.name },
      cell("Kind", w.kind),
      cell("Name", el("span", {}, w.name, el("div", { class: "sub", text: w.namespace }))),
      cell("Ready", el("span", { class: "ratio tone-" + w.tone },
        el("span", { text: w.ready + "/" + w.desired }),
        el("span", { class: "bar" }, el("span", { width: pct.toFixed(0) + "%" })))),
      cell("Status", pill(w.status, w.tone)),
      cell("Images", el("span", { class: "mono sub", text: w.images.join(", ") })),
      cell("Age", ageEl(w.created)));
  }

  function serviceRow(s) {
    const ports = s.ports.map((p) => el("div", {},
      el("span", { class: "mono", text: p.port + (p.targetPort && String(p.targetPort) !== String(p.port) ? "→" + p.targetPort : "") + "/" + p.protocol }),
      p.nodePort ? el("span", { class: "sub", text: "  NodePort " + p.nodePort }) : null));
    const link = (u) => el("a", { href: u, rel: "noreferrer noopener", target: "_blank", class: "mono",
      text: u.replace(/^http:\/\//, "").replace(/\/$/, "") });
    const links = s.ports.filter((p) => p.externalUrls.length).map((p) => el("div", { class: "external" },
      p.externalUrls.map(link))).concat(
      s.ports.filter((p) => p.urls.length).map((p) => el("div", { class: "nodeports" }, p.urls.map(link))));
    const external = s.externalIPs.length ? el("span", { class: "mono", text: s.externalIPs.join(", ") })
      : el("span", { class: "sub", text: s.pending ? "<pending>" : "—" });
    return el("tr", { "data-service": s.namespace + "/" + s.name },
      cell("Name", el("span", {}, s.name, el("div", { class: "sub", text: s.namespace }))),
      cell("Type", s.type),
      cell("Cluster IP", el("span", { class: "mono", text: s.clusterIP || "None" })),
      cell("External IP", external),
      cell("Ports", el("span", {}, ports)),
      cell("Open", links.length ? el("span", {}, links) : el("span", { class: "sub", text: "—" })));
  }

  function eventRow(e) {
    return el("li", { class: "event" + (e.type === "Warning" ? " warning" : "") },
      el("div", { class: "event-head" },
        pill(e.type, e.type === "Warning" ? "warn" : "done"),
        el("b", { text: e.reason }),
        el("span", { class: "event-object", text: e.object }),
        e.namespace ? el("span", { class: "sub", text: e.namespace }) : null,
        e.count > 1 ? el("span", { class: "sub", text: "×" + e.count }) : null,
        el("span", { class: "event-age" }, ageEl(e.last), " ago")),
      el("div", { class: "ev-msg", text: e.message }));
  }

  function eventList(events) {
    if (!events.length) return [el("p", { class: "empty", text: "No recent events." })];
    const shown = showAllEvents ? events : events.slice(0, EVENTS_SHOWN);
    const out = [el("ul", { class: "events panel" }, shown.map(eventRow))];
    if (events.length > EVENTS_SHOWN) {
      const button = el("button", { type: "button", class: "more",
        text: showAllEvents ? "Show fewer" : "Show all " + events.length + " events" });
      button.addEventListener("click", () => { showAllEvents = !showAllEvents; if (lastSummary) render(lastSummary); });
      out.push(button);
    }
    return out;
  }

  function totals(t) {
    const items = [
      [t.boardsReady + "/" + t.boards, " boards ready", t.boardsReady < t.boards ? "bad" : ""],
      [t.podsRunning + "/" + t.pods, " pods running", ""],
    ];
    if (t.podsFailing) items.push([String(t.podsFailing), " failing", "bad"]);
    if (t.warnings) items.push([String(t.warnings), t.warnings === 1 ? " warning" : " warnings", "warn"]);
    return items.map(([n, what, cls]) => el("span", { class: "total " + cls }, el("b", { text: n }), what));
  }

  function render(s) {
    const byName = Object.fromEntries(s.boards.map((b) => [b.name, b]));
    document.getElementById("totals").replaceChildren(...totals(s.totals));
    const boards = document.getElementById("boards");
    boards.replaceChildren(...(s.boards.length ? s.boards.map(boardCard)
      : [el("p", { class: "empty", text: "No boards have joined yet." })]));
    document.getElementById("pods").replaceChildren(...s.podsByBoard.map((g) => podGroup(g, byName)));
    document.getElementById("workloads").replaceChildren(
      table(["Kind", "Name", "Ready", "Status", "Images", "Age"], s.workloads.map(workloadRow)));
    document.getElementById("services").replaceChildren(
      table(["Name", "Type", "Cluster IP", "External IP", "Ports", "Open"], s.services.map(serviceRow)));
    document.getElementById("events").replaceChildren(...eventList(s.events));
    document.getElementById("foot").textContent = "pikube " + s.version + " · read-only status page";
    document.title = (s.totals.boardsReady < s.totals.boards ? "⚠ " : "") + "pikube: " + s.totals.boardsReady + "/" +
      s.totals.boards + " boards";
  }

  function apply(s) {
    if (s.now) skewMs = Date.parse(s.now) - Date.now();
    lastUpdate = Date.now();
    lastSummary = s;
    render(s);
    tick();
  }

  // --- connection -----------------------------------------------------------------------------
  function setMode(mode, text) {
    const conn = document.getElementById("conn");
    conn.dataset.mode = mode;
    document.getElementById("conn-text").textContent = text;
  }

  function tick() {
    for (const node of document.querySelectorAll(".age")) {
      node.textContent = (node.dataset.prefix || "") + age(node.dataset.t);
    }
    if (lastUpdate) {
      const s = Math.round((Date.now() - lastUpdate) / 1000);
      const when = s < 2 ? "just now" : s + "s ago";
      if (live) setMode("live", "live · " + when);
      else if (pollTimer) setMode("polling", "polling · " + when);
    }
  }

  async function poll() {
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const r = await fetch("api/summary", { headers, cache: "no-store" });
      if (!r.ok) throw new Error(r.status + " " + (await r.text()));
      apply(await r.json());
      if (!live) setMode("polling", "polling · just now");
    } catch (err) {
      if (!live) setMode("offline", "offline: " + err.message);
    }
  }

  function startPolling() {
    if (pollTimer) return;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (typeof EventSource === "undefined") { startPolling(); return; }
    const es = new EventSource("api/stream" + query);
    es.addEventListener("summary", (e) => {
      live = true;
      stopPolling();
      apply(JSON.parse(e.data));
    });
    es.onerror = () => {
      live = false;
      startPolling();
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, SSE_RETRY_MS); // refused (e.g. 503): retry later
    };
  }

  // --- the cluster's store (/api/datastore; shown for an etcd cluster, refreshed every 15 s) ------
  async function datastore() {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    let doc = null;
    try {
      const r = await fetch("api/datastore", { headers, cache: "no-store" });
      if (r.ok) doc = (await r.json()).datastore;
    } catch (err) {
      return;
    }
    if (!doc || doc.backend !== "etcd") return;
    const members = doc.members || [];
    const answering = members.filter((m) => m.healthy).length;
    const quorum = answering * 2 > members.length && !doc.readOnly;
    const rows = members.map((m) => el("tr", {},
      el("td", {}, m.name || m.id),
      el("td", {}, el("span", { class: "pill tone-" + (m.healthy ? "ok" : "bad") }, m.healthy ? "answering" : "not answering")),
      el("td", {}, m.name && m.name === doc.leader ? "leader" : m.learner ? "learner" : ""),
      el("td", {}, (m.clientURLs || []).join(", "))));
    document.getElementById("datastore").replaceChildren(...[
      el("p", {}, el("span", { class: "pill tone-" + (quorum ? "ok" : "bad") }, quorum ? "quorum" : "no quorum"), " ",
        "etcd, " + answering + " of " + members.length + " members answering" +
        (doc.leader ? ", leader " + doc.leader : ", no leader") + (quorum ? "" : " · the API is read-only")),
      doc.error ? el("p", { class: "reason" }, doc.error) : null,
      rows.length ? el("table", {}, el("tbody", {}, rows)) : null].filter(Boolean));
    document.getElementById("datastore-section").hidden = false;
  }

  // --- first boot of the board the page runs on (/api/firstboot; fetched once) ------------------
  const STEP_TONE = { done: "ok", unchanged: "done", skipped: "done", failed: "bad" };
  const RESULT_TONE = { applied: "ok", absent: "done", running: "busy", failed: "bad", invalid: "bad" };

  async function firstBoot() {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    let rec = null;
    try {
      const r = await fetch("api/firstboot", { headers, cache: "no-store" });
      if (r.ok) rec = (await r.json()).record;
    } catch (err) {
      return;
    }
    if (!rec) return;
    const rows = (rec.steps || []).map((s) => el("tr", {},
      el("td", {}, s.name),
      el("td", {}, el("span", { class: "pill tone-" + (STEP_TONE[s.status] || "done") }, s.status)),
      el("td", { class: s.error ? "reason" : null }, s.error || s.message)));
    const problems = (rec.problems || []).map((p) => el("li", { class: "reason" }, p));
    document.getElementById("firstboot").replaceChildren(...[
      el("p", {}, el("span", { class: "pill tone-" + (RESULT_TONE[rec.result] || "done") }, rec.result), " ",
        (rec.source || "pikube.yaml") + (rec.finished ? " · " + rec.finished : rec.started ? " · since " + rec.started : "")),
      problems.length ? el("ul", {}, problems) : null,
      rows.length ? el("table", {}, el("tbody", {}, rows)) : null].filter(Boolean));
    document.getElementById("firstboot-section").hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    firstBoot();
    datastore();
    setInterval(datastore, 15000);
    connect();
    fetchUsage();
    setInterval(fetchUsage, USAGE_MS);
    setInterval(tick, 1000);
    setTimeout(() => { if (!live) startPolling(); }, 3000);
  });
})();
