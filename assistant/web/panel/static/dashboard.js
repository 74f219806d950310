// The Kommandant dashboard: views from /api, live updates from the /api/events stream (the login cookie
// signs both in). No build step, no library: the chart is drawn as SVG here.
"use strict";

const KINDS = ["turn", "tool_call", "tool_result", "refused", "approval_requested", "approval_decided",
  "approval_expired", "approval_result_sent", "bot_state", "scheduled_run", "reminder_fired",
  "agent_up", "agent_down", "schedule_changed", "gap"];
const PANEL_CHANNEL = "panel"; // the reads behind these views: not shown in the feed or the chart
const FEED_MAX = 200;
const state = { lastEventId: null, minutes: [], agents: [], source: null, timers: {} };
window.kommandantDashboard = state; // for tests and the curious

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) } });
  if (response.status === 401) { $("signin").hidden = false; throw new Error("not signed in"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok && response.status !== 202) throw new Error(body.detail || body.text || response.statusText);
  return body;
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) : "–";
}

async function loadOverview() {
  const o = await api("/api/overview");
  $("t-agents").textContent = `${o.agents_alive}/${o.agents_total}`;
  $("t-calls").textContent = o.calls_last_hour.ok + o.calls_last_hour.failed;
  $("t-failed").textContent = o.calls_last_hour.failed;
  $("t-approvals").textContent = o.pending_approvals;
  $("t-bots").textContent = `${o.bots_running}/${o.bots_total}`;
  $("t-dlq").textContent = o.dlq_size ?? "–";
}

async function loadAgents() {
  state.agents = (await api("/api/agents")).agents;
  drawAgents();
}

function drawAgents() {
  $("agents").replaceChildren(...state.agents.map((a) => el("tr", { "data-agent": a.name },
    el("td", {}, a.name), el("td", { class: a.alive ? "up" : "down" }, a.alive ? "up" : "down"),
    el("td", {}, a.instances), el("td", {}, ago(a.last_heartbeat)))));
}

async function loadBots() {
  const bots = (await api("/api/bots")).bots;
  $("bots").replaceChildren(...(bots.length ? bots.map((b) => el("tr", { "data-bot": b.name },
    el("td", {}, b.name), el("td", {}, b.status), el("td", {}, b.restarts))) : [el("tr", {}, el("td", { class: "muted" }, "no bots"))]));
}

async function loadSchedules() {
  const schedules = (await api("/api/schedules")).schedules;
  $("schedules").replaceChildren(...(schedules.length ? schedules.map((s) => el("tr", { "data-schedule": s.name },
    el("td", {}, s.name), el("td", {}, when(s.next_run_at)), el("td", {}, s.enabled ? "yes" : "paused")))
    : [el("tr", {}, el("td", { class: "muted" }, "no schedules"))]));
}

async function decide(id, approve, item) {
  item.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const result = await api(`/api/approvals/${id}/${approve ? "approve" : "reject"}`, { method: "POST" });
    item.append(el("div", { class: "muted outcome" }, result.text));
  } catch (err) {
    item.append(el("div", { class: "down outcome" }, err.message));
  }
  setTimeout(loadApprovals, 1500);
}

async function loadApprovals() {
  const approvals = (await api("/api/approvals?status=pending")).approvals;
  if (!approvals.length) { $("approvals").replaceChildren(el("li", { class: "muted" }, "none")); return; }
  $("approvals").replaceChildren(...approvals.map((a) => {
    const item = el("li", { "data-approval": a.id },
      el("b", {}, a.tool), ` ${JSON.stringify(a.arguments)} — ${a.requested_by}, expires ${when(a.expires_at)}`);
    item.append(el("button", { class: "approve", onclick: () => decide(a.id, true, item) }, "Approve"),
      el("button", { class: "reject", onclick: () => decide(a.id, false, item) }, "Reject"));
    return item;
  }));
}

async function loadChart() {
  state.minutes = (await api("/api/calls/stats?minutes=60")).minutes;
  drawChart();
}

function drawChart() {
  const svg = $("chart");
  const width = 600, height = 120, n = Math.max(state.minutes.length, 1), bar = width / n;
  const top = Math.max(1, ...state.minutes.map((m) => m.ok + m.failed));
  const ns = "http://www.w3.org/2000/svg";
  const shapes = [];
  state.minutes.forEach((m, i) => {
    const okHeight = (m.ok / top) * (height - 4), failedHeight = (m.failed / top) * (height - 4);
    for (const [cls, h, y] of [["ok", okHeight, height - okHeight], ["failed", failedHeight, height - okHeight - failedHeight]]) {
      if (h <= 0) continue;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("class", cls); rect.setAttribute("x", (i * bar + 1).toFixed(1));
      rect.setAttribute("y", y.toFixed(1)); rect.setAttribute("width", Math.max(1, bar - 2).toFixed(1));
      rect.setAttribute("height", h.toFixed(1)); rect.setAttribute("data-minute", m.minute);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${new Date(m.minute).toLocaleTimeString()}: ${m.ok} ok, ${m.failed} failed`;
      rect.append(title); shapes.push(rect);
    }
  });
  svg.replaceChildren(...shapes);
  svg.dataset.total = state.minutes.reduce((sum, m) => sum + m.ok + m.failed, 0);
}

function countCall(data) {
  const minute = new Date(data.ts); minute.setSeconds(0, 0);
  let last = state.minutes[state.minutes.length - 1];
  if (!last || Date.parse(last.minute) < minute.getTime()) {
    last = { minute: minute.toISOString(), ok: 0, failed: 0 };
    state.minutes.push(last);
    if (state.minutes.length > 60) state.minutes.shift();
  }
  if (data.ok) last.ok += 1; else last.failed += 1;
  drawChart();
}

function describe(kind, d) {
  const who = d.owner ? ` — ${d.owner}` : "";
  switch (kind) {
    case "turn": return `“${d.private ? "(private)" : d.text}”${who}`;
    case "tool_call": return `${d.tool} started on ${d.agent}${who}`;
    case "tool_result": return `${d.tool} ${d.ok ? "ok" : "failed"} in ${Math.round(d.duration_ms)} ms: ${d.summary || ""}${who}`;
    case "approval_requested": return `${d.tool} waits for approval ${String(d.approval).slice(0, 8)}${who}`;
    case "approval_decided": return `${d.tool} ${d.status} by ${d.actor}`;
    case "agent_up": case "agent_down": return `${d.agent} ${kind === "agent_up" ? "up" : "down"} (${d.instance})`;
    case "bot_state": return `bot ${d.bot}: ${d.state}${d.reason ? ` (${d.reason})` : ""}, restarts ${d.restarts ?? 0}`;
    case "scheduled_run": return `schedule ${d.schedule}: ${d.status}`;
    case "reminder_fired": return `reminder fired${who}`;
    case "gap": return `events before ${d.oldest} are no longer kept`;
    default: return `${d.tool || d.schedule || ""} ${d.reason || d.status || ""}${who}`;
  }
}

function later(name, load, ms = 300) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(() => load().catch(() => {}), ms);
}

function onEvent(kind, message) {
  if (message.lastEventId) state.lastEventId = message.lastEventId;
  const data = JSON.parse(message.data);
  if (data.channel === PANEL_CHANNEL) return;
  const time = new Date(data.ts || Date.now()).toLocaleTimeString();
  const failed = kind === "tool_result" && !data.ok;
  const item = el("li", { "data-kind": kind, "data-id": data.id ?? "", "data-tool": data.tool || "", class: failed ? "failed" : "" },
    `${time} ${kind} ${describe(kind, data)}`);
  $("feed").prepend(item);
  while ($("feed").children.length > FEED_MAX) $("feed").lastElementChild.remove();
  if (kind === "tool_result") { countCall(data); later("overview", loadOverview); }
  if (kind.startsWith("approval_")) { later("approvals", loadApprovals); later("overview", loadOverview); }
  if (kind === "bot_state") { later("bots", loadBots); later("overview", loadOverview); }
  if (kind === "agent_up" || kind === "agent_down") later("agents", loadAgents);
  if (kind === "scheduled_run" || kind === "schedule_changed") later("schedules", loadSchedules);
}

function connect() {
  const query = state.lastEventId ? `?last_event_id=${encodeURIComponent(state.lastEventId)}` : "";
  const source = new EventSource(`/api/events${query}`, { withCredentials: true });
  state.source = source;
  source.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "pill on"; });
  source.addEventListener("error", () => {
    $("live").textContent = "reconnecting"; $("live").className = "pill off";
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000); // refused: try again
  });
  for (const kind of KINDS) source.addEventListener(kind, (message) => onEvent(kind, message));
}

async function start() {
  try {
    await Promise.all([loadOverview(), loadAgents(), loadBots(), loadSchedules(), loadApprovals(), loadChart()]);
  } catch (err) {
    if (!$("signin").hidden) return; // not signed in: nothing else to do
    console.warn(err);
  }
  connect();
  setInterval(drawAgents, 1000); // heartbeat ages
  setInterval(() => { loadAgents().catch(() => {}); loadOverview().catch(() => {}); }, 15000);
  setInterval(() => loadChart().catch(() => {}), 60000);
}

document.addEventListener("DOMContentLoaded", start);
