// The live dashboard of sb-reporter: polls the read API (docs/api.md) every few seconds
// with the bearer token the manager entered (kept in this browser's localStorage, or
// given once as #token=... in the address, with &day=YYYY-MM-DD for another day than
// today) and shows the day's figures against the SPEC targets, the queues, the SLA clocks
// at risk, the agents, arrivals per hour and the week.
"use strict";

const API = "/api/v1";
const POLL_MS = 5000;
const ENDPOINTS = {
  summary: "/metrics/summary",
  queues: "/queues",
  agents: "/agents",
  risks: "/sla/risks",
  reports: "/reports?limit=20",
};

let token = "";
let timer = null;

function $(sel) { return document.querySelector(sel); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmtPct(v) { return v === null || v === undefined ? "–" : (Number(v) * 100).toFixed(1) + " %"; }
function fmtNum(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d || 0); }
function fmtDur(s) {
  if (s === null || s === undefined) return "–";
  s = Number(s);
  const neg = s < 0; s = Math.abs(s);
  let out;
  if (s < 90) out = s.toFixed(0) + " s";
  else if (s < 5400) out = (s / 60).toFixed(0) + " min";
  else if (s < 172800) out = (s / 3600).toFixed(1) + " h";
  else out = (s / 86400).toFixed(1) + " d";
  return neg ? "-" + out : out;
}

async function api(path) {
  const day = $("#day").value;
  let url = API + path;
  if (day && (path.startsWith(ENDPOINTS.summary) || path.startsWith(ENDPOINTS.agents)))
    url += (url.includes("?") ? "&" : "?") + "date=" + encodeURIComponent(day);
  const r = await fetch(url, { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) { showLogin("The token was refused: enter another one."); throw new Error("401"); }
  const body = await r.json();
  if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
  return body;
}

function setKpi(name, value, text, good) {
  const k = document.getElementById("kpi-" + name);
  if (!k) return;
  k.dataset.value = value === null || value === undefined ? "" : String(value);
  k.querySelector(".v").textContent = text;
  k.classList.remove("good", "bad");
  if (good === true) k.classList.add("good");
  if (good === false) k.classList.add("bad");
}

function renderSummary(s) {
  const k = s.kpi, t = s.targets;
  setKpi("arrivals", k.arrivals, fmtNum(k.arrivals));
  setKpi("first_response_avg_s", k.first_response_avg_s, fmtDur(k.first_response_avg_s),
         k.first_response_avg_s === null ? undefined : k.first_response_avg_s <= t.first_response_aftersale_s);
  setKpi("resolution_rate", k.resolution_rate, fmtPct(k.resolution_rate));
  setKpi("first_contact_resolution", k.first_contact_resolution, fmtPct(k.first_contact_resolution),
         k.first_contact_resolution === null ? undefined : k.first_contact_resolution >= t.first_contact_resolution);
  setKpi("csat_avg", k.csat_avg, k.csat_avg === null ? "–" : fmtNum(k.csat_avg, 2) + " (" + k.csat_answers + ")",
         k.csat_avg === null ? undefined : k.csat_avg >= 4);
  setKpi("sla_attainment", k.sla_attainment, fmtPct(k.sla_attainment),
         k.sla_attainment === null ? undefined : k.sla_attainment >= 0.95);
  setKpi("backlog", k.backlog, fmtNum(k.backlog));
  setKpi("breached_tickets", k.breached_tickets, fmtNum(k.breached_tickets), k.breached_tickets === 0);
  setKpi("followup_rate", k.followup_rate,
         k.followup_rate === null ? "–" : fmtPct(k.followup_rate) + " (" + k.followup_due + ")",
         k.followup_rate === null ? undefined : k.followup_rate >= t.followup_rate);
  setKpi("attitude_share", k.attitude_share,
         k.attitude_share === null ? "–" : fmtPct(k.attitude_share) + " (" + k.negative_feedback + ")",
         k.attitude_share === null ? undefined : k.attitude_share <= t.attitude_negative_share_max);
  document.querySelectorAll(".target[data-target]").forEach((e) => {
    const v = t[e.dataset.target];
    if (typeof v === "number") e.textContent = fmtPct(v);
  });
  renderHourly(s.arrivals_hourly || []);
  const tb = $("#trend tbody");
  tb.replaceChildren(...(s.trend || []).map((d) => row([d.day, d.arrivals, fmtDur(d.first_response_avg_s),
    fmtPct(d.resolution_rate), fmtPct(d.first_contact_resolution), fmtNum(d.csat_avg, 2), d.breached_tickets])));
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  cells.forEach((c) => {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c === null || c === undefined ? "–" : c, typeof c === "number" ? "num" : ""));
  });
  return tr;
}

function renderHourly(hours) {
  const box = $("#hourly");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 480 160");
  const byHour = new Array(24).fill(0);
  hours.forEach((h) => { byHour[new Date(h.hour).getUTCHours()] = h.arrivals; });
  const max = Math.max(1, ...byHour);
  byHour.forEach((n, i) => {
    const hgt = Math.round((n / max) * 130);
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * 20 + 2)); r.setAttribute("y", String(140 - hgt));
    r.setAttribute("width", "16"); r.setAttribute("height", String(hgt));
    const title = document.createElementNS(ns, "title");
    title.textContent = i + ":00 UTC — " + n + " arrivals";
    r.appendChild(title);
    svg.appendChild(r);
    if (i % 3 === 0) {
      const tx = document.createElementNS(ns, "text");
      tx.setAttribute("x", String(i * 20 + 2)); tx.setAttribute("y", "154");
      tx.textContent = String(i).padStart(2, "0");
      svg.appendChild(tx);
    }
  });
  box.replaceChildren(svg);
}

function renderQueues(q) {
  $("#waiting").textContent = q.waiting + " waiting, oldest " + fmtDur(q.oldest_wait_s);
  $("#queues tbody").replaceChildren(...q.queues.map((x) =>
    row([x.channel || "–", x.queue || "–", x.band || "–", x.waiting, fmtDur(x.oldest_wait_s)])));
  $("#channels tbody").replaceChildren(...q.channels.map((c) =>
    row([c.channel || "–", c.waiting, fmtDur(c.oldest_wait_s),
         c.router_estimate ? "#" + c.router_estimate.position + ", " + fmtDur(c.router_estimate.eta_seconds) : "–"])));
}

function renderRisks(r) {
  $("#risk-count").textContent = r.breached + " breached, " + r.at_risk + " at risk";
  $("#risks tbody").replaceChildren(...r.items.map((x) =>
    row([x.ticket_id, x.kind, x.band, x.state, fmtDur(x.remaining_s), x.owner_agent_id, x.queue], x.state)));
}

function renderAgents(a) {
  $("#agents tbody").replaceChildren(...a.agents.map((x) => {
    const cap = x.capacities ? Object.values(x.capacities).reduce((s, v) => s + Number(v || 0), 0) : null;
    return row([x.name ? x.name + " (" + x.agent_id + ")" : x.agent_id, x.team_id, x.status, x.open_tickets,
                cap, x.resolved_today, x.replies_today, x.csat_today === null ? "–" : fmtNum(x.csat_today, 2)]);
  }));
}

async function download(url, name) {
  const r = await fetch(url, { headers: { Authorization: "Bearer " + token } });
  if (!r.ok) return;
  const blob = await r.blob();
  const a = el("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function renderReports(r) {
  $("#reports tbody").replaceChildren(...r.reports.map((x) => {
    const links = el("span");
    ["csv", "html"].forEach((f) => {
      const b = el("button", f.toUpperCase(), "link");
      b.type = "button";
      b.addEventListener("click", () => download(x[f + "_url"], x.kind + "-" + x.period_start + "." + f));
      links.appendChild(b);
    });
    return row([x.kind, x.period_start + " – " + x.period_end, x.summary ? x.summary.arrivals : null, links]);
  }));
}

async function refresh() {
  const parts = [
    ["summary", renderSummary], ["queues", renderQueues], ["risks", renderRisks],
    ["agents", renderAgents], ["reports", renderReports],
  ];
  const results = await Promise.allSettled(parts.map(([name]) => api(ENDPOINTS[name])));
  const failed = [];
  results.forEach((res, i) => {
    if (res.status === "fulfilled") parts[i][1](res.value);
    else failed.push(parts[i][0] + ": " + res.reason.message);
  });
  const st = $("#status");
  st.textContent = failed.length ? "Partly updated — " + failed.join("; ") : "Updated " + new Date().toLocaleTimeString();
  st.className = failed.length ? "err" : "ok";
  document.body.dataset.updated = String(Date.now());
}

function start() {
  if (timer) clearInterval(timer);
  $("#login").hidden = true;
  refresh();
  timer = setInterval(refresh, POLL_MS);
}

function showLogin(msg) {
  if (timer) { clearInterval(timer); timer = null; }
  $("#login").hidden = false;
  $("#status").textContent = msg;
  $("#status").className = "err";
}

document.addEventListener("DOMContentLoaded", () => {
  const m = /token=([^&]+)/.exec(location.hash);
  const d = /day=(\d{4}-\d{2}-\d{2})/.exec(location.hash);
  if (d) $("#day").value = d[1];
  if (m) {
    token = decodeURIComponent(m[1]);
    localStorage.setItem("sb_token", token);
    history.replaceState(null, "", location.pathname);
  } else {
    token = localStorage.getItem("sb_token") || "";
  }
  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("#token").value.trim();
    localStorage.setItem("sb_token", token);
    start();
  });
  $("#day").addEventListener("change", refresh);
  if (token) start(); else showLogin("Enter an API token (sbctl token create --role supervisor).");
});
