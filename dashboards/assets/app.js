// The dashboard's front end: plain JavaScript, no dependencies, served by
// the node itself. Reads /api/v1 and follows /api/v1/events (server-sent
// events). Text from the node is always inserted as text, never as HTML.
"use strict";

const state = {
  node: null,
  agents: new Map(),      // did -> agent row (from /api/v1/trust or peers)
  samples: [],            // trust history
  sort: { key: "score", dir: -1 },
  selected: null,         // did shown in the evidence panel
  token: null,            // write token, kept in memory only
  verification: null,
  names: new Map(),       // did -> name, for agents that are not peers
};
const SAMPLES_SHOWN = 300;
const COLOURS = ["#2b6cb0", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#319795",
  "#d53f8c", "#4a5568", "#dd6b20", "#38a169", "#3182ce", "#805ad5"];

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "title") e.title = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
const shortDid = (d) => d && d.length > 24 ? d.slice(0, 16) + "…" + d.slice(-6) : (d || "");
const shortHex = (h) => h ? h.slice(0, 12) + "…" : "";
const time = (secs) => new Date(secs * 1000).toLocaleTimeString();
function nameOf(did) {
  if (state.node && did === state.node.node.did) return state.node.node.name + " (this node)";
  const a = state.agents.get(did);
  return a && a.name ? a.name : (state.names.get(did) || shortDid(did));
}
function tierBadge(tier) { return el("span", { class: "tier tier-" + tier }, tier.replace("_", " ")); }
function colourOf(did) {
  const dids = [...state.agents.keys()].sort();
  const i = dids.indexOf(did);
  return COLOURS[(i < 0 ? 0 : i) % COLOURS.length];
}

async function api(path, options) {
  const r = await fetch("/api/v1" + path, options);
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body;
}

// ----- tabs -----
function showTab() {
  const tab = (location.hash || "#overview").slice(1);
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("active", s.id === "tab-" + tab));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === tab));
  if (tab === "delegations") loadDelegations();
  if (tab === "ledger") { loadLedger(); if (!state.verification) verify(); }
  if (tab === "trust") renderChart();
}

// ----- overview -----
async function loadNode() {
  state.node = await api("/node");
  const n = state.node.node;
  $("#node-name").textContent = n.name || "mesh node";
  $("#node-org").textContent = n.org;
  $("#node-did").textContent = shortDid(n.did);
  $("#node-did").title = n.did;
  $("#peer-count").textContent = state.node.peers;
  $("#known-count").textContent = state.node.known_agents;
  $("#log-size").textContent = state.node.log_size;
  $("#checkpoint-size").textContent = state.node.checkpoint_size ?? "none yet";
  $("#write-note").textContent = state.node.writes_enabled
    ? "Revoking needs the node's write token (asked once, kept in this page only)."
    : "Read-only: the node has no dashboard token configured.";
}

async function loadAgents() {
  const rows = await api("/trust");
  state.agents = new Map(rows.map((r) => [r.did, r]));
  renderPeers();
  renderTrustTable();
}

function renderPeers() {
  const body = $("#peers-table tbody");
  body.replaceChildren(...[...state.agents.values()]
    .sort((a, b) => (b.connected - a.connected) || a.name.localeCompare(b.name))
    .map((a) => el("tr", { "data-did": a.did },
      el("td", { title: a.did }, a.name, " ", el("code", { class: "muted small" }, shortDid(a.did))),
      el("td", {}, a.org), el("td", {}, tierBadge(a.tier)), el("td", {}, a.score),
      el("td", {}, a.connected ? el("span", { class: "ok" }, "connected") : el("span", { class: "muted" }, "gone")))));
  $("#peer-count").textContent = [...state.agents.values()].filter((a) => a.connected).length;
  $("#known-count").textContent = state.agents.size;
}

function describe(a) {
  switch (a.type) {
    case "peer_joined": return `${a.name} (${a.org}) completed the handshake`;
    case "peer_left": return `peer ${shortDid(a.peer_id)} disconnected`;
    case "refusal": return `refused (${a.kind}): ${a.rule} — ${named(a.subject)}`;
    case "recorded": return `record #${a.index}: ${a.kind} with ${nameOf(a.with)}`;
    case "revocation": return `${nameOf(a.revoker)} revoked ${shortHex(a.target)}`;
    case "witnessed": return `cosigned ${nameOf(a.origin)}'s checkpoint at size ${a.size}`;
    case "cosigned": return `${nameOf(a.witness)} cosigned our checkpoint at size ${a.size}`;
    case "equivocation": return `EQUIVOCATION proven against ${nameOf(a.offender)}`;
    case "trust_report": return `trust report from ${nameOf(a.reporter)}`;
    case "report_published": return "published this node's trust report";
    default: return a.type;
  }
}

function addActivity(a, live) {
  // Reports come from every peer, every few seconds: the chart shows their effect.
  if (a.type === "trust_report" || a.type === "report_published") return;
  const list = $("#activity");
  list.prepend(el("li", { class: a.type === "refusal" ? "refusal" : "" },
    (live ? new Date().toLocaleTimeString() + "  " : "") + describe(a)));
  while (list.children.length > 200) list.lastChild.remove();
}

// ----- trust -----
function renderTrustTable() {
  const q = $("#trust-filter").value.trim().toLowerCase();
  const { key, dir } = state.sort;
  const rows = [...state.agents.values()]
    .filter((a) => !q || [a.name, a.org, a.tier, a.did].some((s) => s.toLowerCase().includes(q)))
    .sort((a, b) => {
      const x = a[key], y = b[key];
      return (typeof x === "string" ? x.localeCompare(y) : (x - y)) * dir;
    });
  document.querySelectorAll("#trust-table th").forEach((th) => {
    th.classList.toggle("asc", th.dataset.key === key && dir > 0);
    th.classList.toggle("desc", th.dataset.key === key && dir < 0);
  });
  $("#trust-table tbody").replaceChildren(...rows.map((a) => el("tr", {
      class: "clickable" + (a.did === state.selected ? " selected" : ""), "data-did": a.did,
      onclick: () => showEvidence(a.did) },
    el("td", { title: a.did }, a.name), el("td", {}, a.org), el("td", {}, a.score),
    el("td", {}, tierBadge(a.tier)), el("td", {}, a.direct_score.toFixed(0)),
    el("td", {}, a.direct_evidence.toFixed(1)), el("td", {}, a.global_score.toFixed(0)),
    el("td", {}, a.reporters), el("td", {}, a.connected ? "yes" : "no"))));
}

async function showEvidence(did) {
  state.selected = did;
  renderTrustTable();
  const d = await api("/trust/" + encodeURIComponent(did));
  const box = $("#trust-detail");
  box.hidden = false;
  box.replaceChildren(
    el("h3", {}, `Why ${nameOf(did)} has ${d.score} (${d.tier.replace("_", " ")})`),
    el("p", {}, `initial ${d.initial}, ceiling ${d.ceiling}${d.capped_by_ceiling ? " (capped)" : ""}; ` +
      `direct ${d.direct_score.toFixed(0)} from evidence mass ${d.direct_evidence.toFixed(2)} ` +
      `(weight ${d.direct_weight.toFixed(2)}); reported ${d.global_score.toFixed(0)} by ${d.reporters} reporter(s)` +
      (d.severe ? `; SEVERE: ${d.severe} holds it at 0` : "")),
    el("table", {}, el("thead", {}, el("tr", {}, ...["dimension", "weight", "estimate", "for", "against"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...d.dimensions.map((x) => el("tr", {}, el("td", {}, x.dimension), el("td", {}, x.weight),
        el("td", {}, x.estimate.toFixed(0)), el("td", {}, x.positive.toFixed(2)), el("td", {}, x.negative.toFixed(2)))))),
    el("h4", {}, "Latest evidence"),
    d.evidence.length === 0 ? el("p", { class: "muted" }, "none") :
      el("ul", { id: "evidence-list" }, ...d.evidence.map((e) =>
        el("li", {}, `${time(e.at)} ${e.kind}`, e.proof ? el("span", { class: "muted" }, ` (proof: ${e.proof})`) : null))));
}

function renderChart() {
  const box = $("#trust-chart");
  const samples = state.samples.slice(-SAMPLES_SHOWN);
  const W = 1000, H = 280, L = 40, B = 24;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "trust scores over time" });
  // Gridlines at the default tier cut-offs (docs/TRUST.md), so a line's
  // height reads as a tier.
  for (const v of [0, 300, 500, 700, 900, 1000]) {
    const y = (H - B) - v / 1000 * (H - B - 8);
    s.append(svg("line", { x1: L, x2: W, y1: y, y2: y, stroke: "#e3e6eb" }));
    const t = svg("text", { x: 4, y: y + 4, "font-size": 11, fill: "#6b7280" });
    t.textContent = v;
    s.append(t);
  }
  const legend = el("div", { class: "legend" });
  if (samples.length > 1) {
    const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
    const x = (t) => L + (t - t0) / Math.max(1, t1 - t0) * (W - L - 10);
    const y = (v) => (H - B) - v / 1000 * (H - B - 8);
    const dids = new Set();
    samples.forEach((p) => Object.keys(p.scores).forEach((d) => dids.add(d)));
    for (const did of [...dids].sort()) {
      const pts = samples.filter((p) => did in p.scores).map((p) => `${x(p.t).toFixed(1)},${y(p.scores[did]).toFixed(1)}`);
      const line = svg("polyline", { points: pts.join(" "), fill: "none", stroke: colourOf(did),
        "stroke-width": did === state.selected ? 3 : 1.5, "data-did": did });
      const title = svg("title", {});
      title.textContent = nameOf(did);
      line.append(title);
      s.append(line);
      const item = el("span", {}, nameOf(did));
      item.style.setProperty("--swatch", colourOf(did));
      legend.append(item);
    }
    const label = svg("text", { x: W - 200, y: H - 6, "font-size": 11, fill: "#6b7280" });
    label.textContent = `${samples.length} samples, ${((t1 - t0) / 1000).toFixed(0)} s`;
    s.append(label);
  }
  box.replaceChildren(s, legend);
  box.dataset.samples = samples.length;
}

// ----- delegations -----
async function loadDelegations() {
  const g = await api("/delegations");
  for (const n of g.nodes) if (n.name) state.names.set(n.did, n.name);
  const W = 900, H = 420, R = 160, cx = W / 2, cy = H / 2;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "delegation graph" });
  const defs = svg("defs", {});
  for (const [id, c] of [["grant", "#2b6cb0"], ["spawn", "#2f855a"], ["revoked", "#c53030"]]) {
    const m = svg("marker", { id: "arrow-" + id, viewBox: "0 0 10 10", refX: 22, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    m.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: c }));
    defs.append(m);
  }
  s.append(defs);
  const pos = new Map();
  g.nodes.forEach((n, i) => {
    const a = 2 * Math.PI * i / Math.max(1, g.nodes.length) - Math.PI / 2;
    pos.set(n.did, n.local && g.nodes.length > 1 ? [cx, cy] : [cx + R * Math.cos(a) * 1.6, cy + R * Math.sin(a)]);
  });
  // Several links between one pair share one line, labelled with the count.
  const pairs = new Map();
  for (const l of g.links) {
    const k = `${l.issuer} ${l.audience} ${l.kind} ${l.revoked}`;
    pairs.set(k, [...(pairs.get(k) || []), l]);
  }
  for (const [, ls] of pairs) {
    const l = ls[0];
    let [x1, y1] = pos.get(l.issuer), [x2, y2] = pos.get(l.audience);
    if (l.revoked) {
      // Beside the valid links of the same pair, not on top of them.
      const len = Math.hypot(x2 - x1, y2 - y1) || 1, dx = -(y2 - y1) / len * 7, dy = (x2 - x1) / len * 7;
      [x1, y1, x2, y2] = [x1 + dx, y1 + dy, x2 + dx, y2 + dy];
    }
    const kind = l.revoked ? "revoked" : l.kind;
    const colour = { grant: "#2b6cb0", spawn: "#2f855a", revoked: "#c53030" }[kind];
    const line = svg("line", { x1, y1, x2, y2, stroke: colour, "stroke-width": 2,
      "marker-end": `url(#arrow-${kind})`, class: "edge edge-" + kind });
    if (l.revoked) line.setAttribute("stroke-dasharray", "6 4");
    const title = svg("title", {});
    title.textContent = `${nameOf(l.issuer)} → ${nameOf(l.audience)}: ${ls.length} ${l.kind}(s)${l.revoked ? " (revoked)" : ""}\n${[...new Set(ls.flatMap((x) => x.capabilities))].join(", ")}`;
    line.append(title);
    s.append(line);
    if (ls.length > 1) {
      const t = svg("text", { x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2 - 4, "font-size": 11, fill: colour });
      t.textContent = "×" + ls.length;
      s.append(t);
    }
  }
  for (const n of g.nodes) {
    const [x, y] = pos.get(n.did);
    s.append(svg("circle", { cx: x, cy: y, r: 14, fill: n.local ? "#1d2330" : "#fff", stroke: "#1d2330", "stroke-width": 2 }));
    const t = svg("text", { x, y: y + 30, "font-size": 12, "text-anchor": "middle", fill: "#1d2330" });
    t.textContent = n.local ? n.name + " (this node)" : (n.name || shortDid(n.did));
    s.append(t);
  }
  $("#graph").replaceChildren(s);
  $("#links-table tbody").replaceChildren(...g.links.map((l) => el("tr", {},
    el("td", {}, l.kind), el("td", { title: l.issuer }, nameOf(l.issuer)), el("td", { title: l.audience }, nameOf(l.audience)),
    el("td", {}, l.capabilities.join(", ")), el("td", {}, new Date(l.expires * 1000).toLocaleString()),
    el("td", {}, l.revoked ? el("span", { class: "fail" }, "revoked") : "valid"),
    el("td", {}, l.issued_here && !l.revoked && state.node && state.node.writes_enabled
      ? el("button", { type: "button", onclick: () => revoke(l.hash) }, "revoke") : ""))));
}

async function revoke(hash) {
  if (!state.token) state.token = prompt("The node's dashboard token (kept in this page only):");
  if (!state.token) return;
  try {
    const out = await api("/revocations", { method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + state.token },
      body: JSON.stringify({ link: hash, reason: "revoked from the dashboard" }) });
    alert(`Revoked ${shortHex(out.link)}` + (out.record !== null ? ` (record #${out.record})` : ""));
  } catch (e) {
    state.token = null;
    alert("Not revoked: " + e.message);
  }
  loadDelegations();
}

// ----- ledger -----
async function loadLedger() {
  const l = await api("/ledger");
  $("#ledger-origin").textContent = l.origin;
  $("#ledger-size").textContent = l.size;
  $("#log-size").textContent = l.size;
  $("#ledger-root").textContent = l.root;
  const cp = l.checkpoint;
  $("#checkpoint-size").textContent = cp ? cp.size : "none yet";
  $("#checkpoint").replaceChildren(cp ? el("div", { class: "detail" },
    el("p", {}, `size ${cp.size}, root `, el("code", {}, cp.root)),
    el("table", { id: "cosignatures-table" }, el("thead", {}, el("tr", {}, el("th", {}, "witness"), el("th", {}, "signed at"), el("th", {}, "signature"))),
      el("tbody", {}, ...cp.cosignatures.map((c) => el("tr", {},
        el("td", { title: c.witness }, nameOf(c.witness)), el("td", {}, c.time ? time(c.time) : "–"),
        el("td", {}, c.valid ? el("span", { class: "ok" }, "valid") : el("span", { class: "fail" }, "INVALID")))))),
    el("details", {}, el("summary", {}, "the signed note"), el("pre", {}, cp.note)))
    : el("p", { class: "muted" }, "no checkpoint yet"));
  $("#witnessing-table tbody").replaceChildren(...l.witnessing.map((w) => el("tr", {},
    el("td", { title: w.origin }, nameOf(w.origin)), el("td", {}, w.size), el("td", {}, el("code", {}, shortHex(w.root))))));
  const page = await api("/ledger/records?limit=50");
  $("#records-table tbody").replaceChildren(...page.records.slice().reverse().map((r) => el("tr", {
      class: "clickable", "data-index": r.index, onclick: () => showProof(r.index) },
    el("td", {}, r.index), el("td", {}, r.kind), el("td", { title: r.actor }, nameOf(r.actor)),
    el("td", { title: r.counterparty }, nameOf(r.counterparty)), el("td", {}, time(r.timestamp)),
    el("td", {}, el("code", {}, shortHex(r.leaf_hash))))));
}

async function verify() {
  const box = $("#verification");
  box.textContent = "verifying…";
  $("#verify-now").disabled = true;
  try {
    const v = await api("/ledger/verification");
    state.verification = v;
    box.replaceChildren(el("span", { class: v.sound ? "ok" : "fail" }, v.sound ? "SOUND" : "FAULTS"),
      ` — ${v.records} records (both signatures each), ${v.checkpoints} checkpoints, ${v.cosignatures} witness cosignatures verified` +
      `${v.unknown_cosigners ? `, ${v.unknown_cosigners} from unknown keys` : ""}; ${v.millis} ms at ${time(v.at)}`,
      ...v.faults.map((f) => el("div", { class: "fail" }, f)));
    $("#ledger-sound").replaceChildren(el("span", { class: v.sound ? "ok" : "fail" }, v.sound ? "sound" : "faults"));
  } catch (e) {
    box.textContent = "verification failed: " + e.message;
  }
  $("#verify-now").disabled = false;
}

// RFC 9162 §2.1.3.2, checked here with the browser's own SHA-256.
async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
const fromHex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
const toHex = (b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
async function nodeHash(left, right) {
  const m = new Uint8Array(65);
  m[0] = 1; m.set(left, 1); m.set(right, 33);
  return sha256(m);
}
async function checkInclusion(index, size, leafHex, path, rootHex) {
  if (index >= size) return false;
  let fn = index, sn = size - 1, r = fromHex(leafHex);
  for (const p of path.map(fromHex)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && toHex(r) === rootHex;
}

async function showProof(index) {
  document.querySelectorAll("#records-table tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.index === String(index)));
  const box = $("#proof");
  box.hidden = false;
  box.textContent = "fetching the proof…";
  const p = await api(`/ledger/records/${index}/proof`);
  const here = window.crypto && crypto.subtle ? await checkInclusion(index, p.size, p.record.leaf_hash, p.path, p.root) : null;
  box.replaceChildren(
    el("h3", {}, `Inclusion proof of record #${index} in the tree of ${p.size}`),
    el("p", {}, `${p.record.kind} by ${nameOf(p.record.actor)} with ${nameOf(p.record.counterparty)} at ${time(p.record.timestamp)}`),
    el("p", {}, "leaf ", el("code", {}, p.record.leaf_hash)),
    el("p", {}, "root ", el("code", {}, p.root)),
    el("ol", {}, ...p.path.map((h) => el("li", {}, el("code", {}, h)))),
    el("p", { id: "proof-verdict" }, "the node: ", el("span", { class: p.verified ? "ok" : "fail" }, p.verified ? "verified" : "FAILED"),
      "; this browser (SHA-256 in the page): ",
      here === null ? el("span", { class: "muted" }, "not available") :
        el("span", { class: here ? "ok" : "fail" }, here ? "verified" : "FAILED")));
}

// ----- refusals -----
// Every DID in a text, by its agent's name where one is known (shortened
// otherwise); the full text stays in the cell's title.
const named = (text) => (text || "").replace(/did:key:z[1-9A-HJ-NP-Za-km-z]+/g, (d) => nameOf(d));
function refusalRow(r) {
  return el("tr", {}, el("td", {}, time(r.at)), el("td", {}, r.kind),
    el("td", { title: r.subject }, named(r.subject)),
    el("td", {}, el("code", {}, r.rule)), el("td", { title: r.reason }, named(r.reason)));
}
async function loadRefusals() {
  const rs = await api("/refusals");
  $("#refusals-table tbody").replaceChildren(...rs.map(refusalRow));
  $("#refusal-count").textContent = rs.length;
}

// ----- live updates -----
let agentsDue = false;
function live() {
  const status = $("#live-status");
  const es = new EventSource("/api/v1/events");
  es.onopen = () => { status.textContent = "live"; status.className = "status up"; };
  es.onerror = () => { status.textContent = "reconnecting"; status.className = "status down"; };
  es.addEventListener("trust", (m) => {
    const sample = JSON.parse(m.data);
    state.samples.push(sample);
    if (state.samples.length > 2 * SAMPLES_SHOWN) state.samples.splice(0, SAMPLES_SHOWN);
    let unknown = false;
    for (const [did, score] of Object.entries(sample.scores)) {
      const a = state.agents.get(did);
      if (a) a.score = score; else unknown = true;
    }
    if (unknown || agentsDue) { agentsDue = false; loadAgents(); } else { renderPeers(); renderTrustTable(); }
    if ($("#tab-trust").classList.contains("active")) renderChart();
  });
  es.addEventListener("activity", (m) => {
    const a = JSON.parse(m.data);
    addActivity(a, true);
    if (a.type === "refusal") {
      $("#refusals-table tbody").prepend(refusalRow(a));
      $("#refusal-count").textContent = $("#refusals-table tbody").children.length;
    }
    if (a.type === "recorded") $("#log-size").textContent = a.index + 1;
    if (a.type === "peer_joined" || a.type === "peer_left") agentsDue = true;
    if (a.type === "recorded" && $("#tab-ledger").classList.contains("active")) scheduleLedger();
    if ((a.type === "revocation") && $("#tab-delegations").classList.contains("active")) loadDelegations();
  });
  es.addEventListener("lagged", () => { loadAgents(); loadRefusals(); });
}
let ledgerTimer = null;
function scheduleLedger() {
  if (ledgerTimer) return;
  ledgerTimer = setTimeout(() => { ledgerTimer = null; loadLedger(); }, 1000);
}

async function start() {
  document.querySelectorAll("#trust-table th").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.key;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : (key === "name" || key === "org" ? 1 : -1) };
    renderTrustTable();
  }));
  $("#trust-filter").addEventListener("input", renderTrustTable);
  $("#verify-now").addEventListener("click", verify);
  window.addEventListener("hashchange", showTab);
  await loadNode();
  state.samples = await api("/trust/history");
  await loadAgents();
  const recent = await api("/activity");
  recent.slice().reverse().forEach((a) => addActivity(a, false));
  await loadRefusals();
  showTab();
  if (!state.verification) verify();
  live();
  document.body.dataset.ready = "yes";
}
start().catch((e) => { $("#live-status").textContent = "error: " + e.message; });
