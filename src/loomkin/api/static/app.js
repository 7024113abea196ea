// Loomkin web app: plain JS modules, no dependencies. One page per session.
//
// Load: the session's view and the newest feed rows (not the log from 0), then the live
// stream after them (SSE, id = log position; a reconnect resumes after the last row seen).
// Live rows are queued and applied once per animation frame; the session's view is fetched
// at most twice a second while rows arrive. The server's identity is checked on every
// (re)connection and every 10 s: a restarted server, a session no longer open, or a server
// that cannot be reached is said in a banner, and the controls are disabled meanwhile.
"use strict";

import { $, TOKEN, api, el, later, money, num, onNetwork, short, toast, words } from "./js/util.js";
import { Feed } from "./js/feed.js";
import { setupSpeculation, speculationRows } from "./js/speculation.js";
import { drafts, noteActivity, renderAgents, renderBudgets, renderSummary, renderTeams, tickElapsed } from "./js/panels.js";
import { enableBudgetForm, setupBudgetForm } from "./js/budgets.js";
import { renderTasks } from "./js/graph.js";
import { announce, budgetPaused, renderPrompts, setupNotifications, setupShortcuts } from "./js/prompts.js";
import { renderSpend, renderTimeline } from "./js/timeline.js";
import { addChat, loadChat, setupChat } from "./js/chat.js";
import { setupCluster } from "./js/cluster.js";

const params = new URLSearchParams(location.search);

const state = {
  sessionId: null, detail: null, last: 0, source: null, serverId: null, conn: "connecting",
  readOnly: false, stale: false, queue: [], keys: {}, watching: new Map(), refreshing: false,
  refreshAgain: false, lastRefresh: 0, outcomes: new Map(), retryDelay: 1000, retryTimer: 0, types: new Set(),
};
const base = () => `/api/sessions/${encodeURIComponent(state.sessionId)}`;
const live = () => state.conn === "live" && !state.readOnly && !state.stale;

const feed = new Feed({ onOpen: openRow, onNeedOlder: loadOlder });

// ---- start ------------------------------------------------------------------------------------

async function start() {
  setupChat(base);
  setupNotifications();
  setupShortcuts();
  setupBudgetForm({ base, refresh: () => scheduleRefresh(true) });
  setupCluster();
  const [server, sessions] = await Promise.all([api("GET", "/api/server"), api("GET", "/api/sessions")]);
  state.serverId = server.server_id;
  fillSwitcher(sessions);
  const wanted = params.get("session");
  const open = sessions.filter((s) => s.open);
  const chosen = wanted ? sessions.find((s) => s.session_id === wanted) : open[open.length - 1] || sessions[sessions.length - 1];
  if (!chosen) {
    if (wanted) toast(`no session ${wanted} in this store`, "error");
    $("start").hidden = false;
    $("run-status").textContent = "no session";
    setConn("live");
    return;
  }
  state.sessionId = chosen.session_id;
  $("session-switch").value = chosen.session_id;
  $("workspace").hidden = false;
  $("insight").hidden = false;
  const [detail, tail] = await Promise.all([api("GET", base()), api("GET", `${base()}/feed/tail?limit=300`)]);
  state.last = tail.last_position;
  feed.more = tail.more;
  feed.append(tail.rows);
  for (const row of tail.rows) { noteActivity(row); addType(row.type); }
  addChat(tail.rows.filter((r) => r.type === "chat_user" || r.type === "chat_reply"));
  loadChat(tail.first_position);
  apply(detail);
  setupSpeculation({ base, live, titles: taskIndex });
  if (!detail.session.open) readOnly(`This session is not running on this server${detail.session.status === "ended" ? " (it ended)" : ""}: you are reading it as its log left it.`, open);
  later("ready", () => {
    performance.mark("loomkin-interactive");
    document.body.dataset.ready = "1";
  });
  connect();
  setInterval(heartbeat, 10_000);
  setInterval(tickElapsed, 1000);
  // A streaming answer makes no event until it ends: while an agent thinks, fetch its text.
  setInterval(() => { if (live() && state.detail?.agents.some((a) => a.status === "thinking")) scheduleRefresh(); }, 1000);
  watchInsight();
}

function fillSwitcher(sessions) {
  const select = $("session-switch");
  const label = (s) => `${s.title || s.session_id.slice(-8)} · ${s.project_root.split("/").pop()} · ${s.open ? "live" : s.status === "ended" ? "ended" : "read-only"}`;
  select.replaceChildren(...[...sessions].reverse().map((s) => el("option", { value: s.session_id, "data-open": s.open ? "1" : "0" }, label(s))));
  if (state.sessionId) select.value = state.sessionId;
}

$("session-switch").addEventListener("change", (event) => {
  params.set("session", event.target.value);
  location.search = params.toString();
});

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const created = await api("POST", "/api/sessions", { project: form.get("project"), model: form.get("model") || undefined });
  params.set("session", created.session_id);
  location.search = params.toString();
});

// ---- connection -------------------------------------------------------------------------------

function setConn(conn, banner = "") {
  state.conn = conn;
  $("connection").dataset.state = conn;
  $("connection-text").textContent = { connecting: "connecting…", live: "live", down: "server unreachable", stale: "not live", unauthorized: "token refused" }[conn] || conn;
  if (conn === "live" && !state.stale) hideBanner("conn");
  else if (banner) showBanner("conn", banner, conn === "down" ? "error" : "warn");
  document.body.dataset.conn = conn;
  setLive();
}

function setLive() {
  const ok = live();
  for (const button of document.querySelectorAll("[data-live]")) button.disabled = !ok || button.dataset.off === "1";
  $("chat-input").disabled = !ok;
  $("chat-send").disabled = !ok;
  if (state.detail) later("detail", () => render(state.detail, true));
}

function showBanner(key, text, kind, ...actions) {
  let banner = document.querySelector(`#banners [data-key="${key}"]`);
  const fresh = el("div", { class: `banner ${kind}`, "data-key": key, role: "status" }, el("span", {}, text), ...actions);
  if (banner) banner.replaceWith(fresh); else $("banners").append(fresh);
  banner = fresh;
}
function hideBanner(key) { document.querySelector(`#banners [data-key="${key}"]`)?.remove(); }

function connect() {
  if (state.source) state.source.close();
  const query = new URLSearchParams({ after: String(state.last) });
  if (TOKEN) query.set("token", TOKEN);
  const source = new EventSource(`${base()}/events?${query}`);
  state.source = source;
  source.onopen = () => { if (state.source === source) checkServer().then((ok) => { if (ok && state.source === source) setConn("live"); }); };
  source.addEventListener("row", (event) => {
    const row = JSON.parse(event.data);
    if (row.position <= state.last) return; // a reconnect may overlap
    state.last = row.position;
    state.queue.push(row);
    later("rows", drain);
    scheduleRefresh();
  });
  source.onerror = () => {
    if (state.source !== source) return;
    source.close();
    state.source = null;
    lost();
  };
}

function lost() {
  if (state.stale) return;
  setConn("down", "The server cannot be reached. Controls are disabled; retrying…");
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(retry, state.retryDelay);
}

async function retry() {
  state.retryDelay = Math.min(state.retryDelay * 2, 8000);
  const ok = await checkServer();
  if (ok === null) { state.retryTimer = setTimeout(retry, state.retryDelay); return; }
  state.retryDelay = 1000;
  if (ok && !state.stale) connect();
}

/** True: same server, session live; false: not live (said in a banner); null: unreachable. */
async function checkServer() {
  let server;
  try { server = await api("GET", "/api/server", undefined, { quiet: true }); } catch (error) { return error.status === 401 ? false : null; }
  const restarted = server.server_id !== state.serverId;
  const hosted = server.open_sessions.includes(state.sessionId);
  if (state.readOnly) return true;
  if (restarted || !hosted) {
    state.stale = true;
    if (state.source) { state.source.close(); state.source = null; }
    const others = server.open_sessions.filter((id) => id !== state.sessionId);
    const text = restarted
      ? "The server restarted: this tab's session is no longer open here. What you see is how it was; nothing here can be changed."
      : "This session is no longer open on the server. What you see is how it was; nothing here can be changed.";
    const actions = [];
    if (hosted) actions.push(el("button", { type: "button", onclick: () => location.reload() }, "Reload this session"));
    if (others.length) actions.push(el("button", { type: "button", class: "primary", onclick: () => { params.set("session", others[others.length - 1]); location.search = params.toString(); } }, "Open the current session"));
    setConn("stale");
    showBanner("conn", text, "error", ...actions);
    document.title = "(stale) Loomkin";
    return false;
  }
  return true;
}

async function heartbeat() {
  if (state.stale || state.conn === "down") return;
  const ok = await checkServer();
  if (ok === null) { if (state.source) { state.source.close(); state.source = null; } lost(); }
}

onNetwork("unreachable", () => { if (state.conn === "live") { if (state.source) { state.source.close(); state.source = null; } lost(); } });
onNetwork("unauthorized", () => setConn("unauthorized", "The server refused this tab's token (was it restarted with a new one?). Open the URL it printed."));

function readOnly(text, open) {
  state.readOnly = true;
  const others = open.filter((s) => s.session_id !== state.sessionId);
  // Resuming is the server's call (project under its roots, nobody else running it): the
  // button asks, and a refusal is shown with the server's reason.
  const resume = el("button", { type: "button", onclick: async (event) => {
    event.target.disabled = true;
    try {
      await api("POST", `${base()}/resume`);
      location.reload();
    } catch (_) { event.target.disabled = false; }
  } }, "Resume here");
  const actions = [resume];
  if (others.length) actions.push(el("button", { type: "button", class: "primary", onclick: () => { params.set("session", others[others.length - 1].session_id); location.search = params.toString(); } }, "Open the current session"));
  showBanner("readonly", text, "info", ...actions);
  document.body.dataset.readonly = "1";
  setLive();
}

// ---- rows -------------------------------------------------------------------------------------

function drain() {
  const rows = state.queue.splice(0);
  if (!rows.length) return;
  const chat = [];
  let cards = false;
  for (const row of rows) {
    if (row.type === "chat_user" || row.type === "chat_reply") chat.push(row);
    cards = noteActivity(row) || cards;
    addType(row.type);
    if (row.kind === "control_applied" || row.kind === "control_dropped") {
      const watched = state.watching.get(row.payload.request_id);
      if (watched) {
        state.watching.delete(row.payload.request_id);
        toast(controlOutcome(watched, row), row.kind === "control_dropped" ? "warn" : "info");
      } else {
        // The outcome can arrive before the POST that asked for it returns: keep it.
        state.outcomes.set(row.payload.request_id, row);
        if (state.outcomes.size > 200) state.outcomes.delete(state.outcomes.keys().next().value);
      }
    }
  }
  feed.append(rows);
  speculationRows(rows);
  if (chat.length) addChat(chat);
  if (cards && state.detail) later("detail", () => render(state.detail, true));
}

/** What a control the user gave did, in words (from its applied/dropped row). */
function controlOutcome(watched, row) {
  const { agent, action } = watched;
  if (row.kind === "control_dropped") return `${action} ${agent} did nothing: ${row.payload.reason === "superseded" ? "a newer one replaced it" : "a cancel made it moot"}`;
  const at = row.payload.checkpoint;
  if (action === "cancel" && at === "idle") return `cancel ${agent}: it was idle, so there was nothing to cancel`;
  return `${action} ${agent}: done (${words(at)})`;
}

function addType(type) {
  if (state.types.has(type)) return;
  state.types.add(type);
  $("filter-type").append(el("option", { value: type }, words(type)));
}

async function loadOlder() {
  if (feed.loading || !feed.more || feed.oldest === null) return;
  feed.loading = true;
  try {
    const page = await api("GET", `${base()}/feed/tail?limit=300&before=${feed.oldest}`, undefined, { quiet: true });
    feed.more = page.more;
    feed.prepend(page.rows);
    for (const row of page.rows) addType(row.type);
  } catch (_) { /* retried on the next scroll */ } finally {
    feed.loading = false;
  }
}

function openRow(entry) {
  if (!entry) return;
  const rows = entry.end ? [entry.row, entry.end] : [entry.row];
  $("row-title").textContent = `${words(entry.row.type)} · ${entry.row.actor}`;
  $("row-body").replaceChildren(...rows.map((r) => el("section", { "data-kind": r.kind },
    el("h3", {}, `${r.kind} · #${num(r.position)} · ${new Date(r.recorded_at * 1000).toLocaleString()}`),
    el("p", {}, r.summary),
    el("pre", {}, JSON.stringify(r.payload, null, 2)))));
  $("row-dialog").showModal();
}

for (const [id, key] of [["filter-team", "team"], ["filter-agent", "agent"], ["filter-type", "type"]]) {
  $(id).addEventListener("change", (event) => feed.setFilter({ [key]: event.target.value }));
}
$("show-status").addEventListener("change", (event) => feed.setFilter({ status: event.target.checked }));
let searchTimer = 0;
$("feed-search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => feed.setFilter({ text: event.target.value.trim().toLowerCase() }), 150);
});

// ---- the session's view -------------------------------------------------------------------------

/** Task id → task of the session's view (the speculation panel names tasks by title). */
let tasksOf = null, tasksById = new Map();
function taskIndex() {
  const tasks = state.detail?.tasks || [];
  if (tasks !== tasksOf) { tasksOf = tasks; tasksById = new Map(tasks.map((t) => [t.task_id, t])); }
  return tasksById;
}

// Events ask for the session's view at most once a second (cards, tree, budgets follow);
// a user's own action asks at once.
function scheduleRefresh(urgent = false) {
  if (state.refreshing) { state.refreshAgain = true; return; }
  const wait = urgent ? 0 : Math.max(0, 1000 - (performance.now() - state.lastRefresh));
  state.refreshing = true;
  setTimeout(async () => {
    try { apply(await api("GET", base(), undefined, { quiet: true })); } catch (_) { /* the connection check reports it */ }
    state.lastRefresh = performance.now();
    state.refreshing = false;
    if (state.refreshAgain) { state.refreshAgain = false; scheduleRefresh(); }
  }, wait);
}

function apply(detail) {
  state.detail = detail;
  if (!state.readOnly && !state.stale) announce(detail); // the title works in hidden tabs too
  later("detail", () => render(detail, false));
}

function changed(key, value) {
  const text = JSON.stringify(value);
  if (state.keys[key] === text) return false;
  state.keys[key] = text;
  return true;
}

function render(detail, force) {
  renderStatus(detail);
  const ok = live();
  renderAgents(detail, { live: ok, control, inspect });
  if (changed("teams", [detail.teams, detail.agents.map((a) => [a.agent_id, a.status])])) renderTeams(detail);
  if (changed("tasks", [detail.tasks, detail.dependencies])) renderTasks(detail, base);
  if (changed("budgets", detail.budgets)) renderBudgets(detail);
  enableBudgetForm(ok);
  if (force || changed("prompts", [detail.permissions.map((p) => p.request_id), detail.agents.map((a) => a.status_reason), (detail.questions || []).map((q) => q.question_id)])) renderPrompts(detail, { base, live: ok, refresh: () => scheduleRefresh(true) });
  if (changed("options", [detail.teams.map((t) => t.team_id), detail.agents.map((a) => a.agent_id)])) {
    syncOptions($("filter-team"), detail.teams.map((t) => [t.team_id, t.name]));
    syncOptions($("filter-agent"), detail.agents.map((a) => [a.agent_id, `${a.name} (${a.team_name})`]));
  }
}
document.addEventListener("loomkin:rerender", () => { if (state.detail) render(state.detail, true); });

function syncOptions(select, items) {
  const current = select.value;
  select.replaceChildren(select.options[0], ...items.map(([value, label]) => el("option", { value }, label)));
  select.value = items.some(([value]) => value === current) ? current : "";
}

function renderStatus(detail) {
  const pill = $("run-status");
  const paused = detail.agents.filter((a) => a.status === "paused").length;
  let name = "idle";
  let text = "idle";
  if (state.stale || state.readOnly) { name = "readonly"; text = detail.session.status === "ended" ? "ended · read-only" : "read-only"; }
  else if (detail.permissions.length + budgetPaused(detail).length) { name = "waiting"; text = `waiting for you (${detail.permissions.length + budgetPaused(detail).length})`; }
  else if (detail.working) { name = "working"; text = `working (${detail.working} agent${detail.working === 1 ? "" : "s"})`; }
  if (paused && !state.readOnly) text += ` · ${paused} paused`;
  pill.dataset.state = name;
  pill.textContent = text;
  const s = detail.session;
  $("session-title").textContent = `${s.title || s.session_id} · ${short(s.project_root, 60)}`;
}

async function control(agent, action, body) {
  const out = await api("POST", `${base()}/agents/${encodeURIComponent(agent.agent_id)}/${action}`, body);
  const watched = { agent: agent.name, action };
  const early = state.outcomes.get(out.request_id);
  if (early) {
    state.outcomes.delete(out.request_id);
    toast(controlOutcome(watched, early), early.kind === "control_dropped" ? "warn" : "info");
  } else {
    state.watching.set(out.request_id, watched);
    toast(`${action} ${agent.name}: asked…`);
  }
  scheduleRefresh(true);
}

async function inspect(agent) {
  const result = await api("GET", `${base()}/agents/${encodeURIComponent(agent.agent_id)}/inspect`);
  $("inspect-title").textContent = `Inspect ${agent.name}`;
  $("inspect-body").textContent = JSON.stringify(result.snapshot, null, 2);
  $("inspect-dialog").showModal();
}

// ---- timeline, spend and summary (fetched while in view) ---------------------------------------

function watchInsight() {
  let visible = false;
  let shownAt = -1;
  const load = async () => {
    if (!visible || document.hidden || shownAt === state.last) return;
    shownAt = state.last;
    try {
      const [timeline, report] = await Promise.all([
        api("GET", `${base()}/timeline`, undefined, { quiet: true }),
        api("GET", `${base()}/report`, undefined, { quiet: true }),
      ]);
      later("insight", () => {
        const width = $("timeline-wrap").clientWidth;
        renderTimeline(timeline, width);
        renderSpend(timeline, width, $("spend-metric").value);
        renderSummary(report);
        $("insight").dataset.loaded = "1";
        state.timeline = timeline;
      });
    } catch (_) { shownAt = -1; }
  };
  new IntersectionObserver((entries) => { visible = entries.some((e) => e.isIntersecting); load(); }).observe($("insight"));
  setInterval(load, 5000);
  $("spend-metric").addEventListener("change", () => { if (state.timeline) renderSpend(state.timeline, $("timeline-wrap").clientWidth, $("spend-metric").value); });
  $("insight-refresh").addEventListener("click", () => { shownAt = -1; load(); });
}

window.__loomkin = { state, feed, money };
start().catch((error) => {
  $("run-status").textContent = `error: ${error.message}`;
  if (error.name === "Unreachable") lost();
});
