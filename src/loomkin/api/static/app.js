// Loomkin web app: plain JS, no dependencies. One page per session.
// Live rows arrive over SSE (id = log position); the browser resends Last-Event-ID when it
// reconnects, and a manual reconnect passes ?after=<last position>, so no row is missed.
"use strict";

const TOKEN = takeAccessToken();
const params = new URLSearchParams(location.search);

// The server's token arrives once, in the URL `loomkin serve` prints (?token=...). Keep it in
// sessionStorage (this tab only, gone when it closes) and take it out of the address bar, so
// it does not stay in the history or get copied along with the URL. Every API call sends it
// as a Bearer header; EventSource cannot, so the live stream's URL carries it (GET only).
function takeAccessToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given) {
    try { sessionStorage.setItem("loomkin-token", given); } catch (_) { /* storage off */ }
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    return given;
  }
  try { return sessionStorage.getItem("loomkin-token"); } catch (_) { return null; }
}
const MAX_ROWS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const WORKING = new Set(["thinking", "executing_tool", "waiting_permission"]);

const state = { sessionId: null, detail: null, rows: [], last: 0, source: null, refreshTimer: null, steering: {} };
const $ = (id) => document.getElementById(id);

// ---- HTTP -----------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const init = { method, headers };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).detail || message; } catch (_) { /* not JSON */ }
    toast(message);
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const base = () => `/api/sessions/${encodeURIComponent(state.sessionId)}`;
const money = (usd) => `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
const short = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

// ---- start ----------------------------------------------------------------------------------

async function start() {
  const sessions = await api("GET", "/api/sessions");
  const wanted = params.get("session");
  const open = sessions.filter((s) => s.open);
  const chosen = wanted ? sessions.find((s) => s.session_id === wanted) : open[open.length - 1];
  if (!chosen) {
    if (wanted) toast(`no session ${wanted}`);
    $("start").hidden = false;
    $("run-status").textContent = "no session";
    return;
  }
  state.sessionId = chosen.session_id;
  $("session-title").textContent = `${chosen.title || chosen.session_id} · ${chosen.project_root}`;
  $("workspace").hidden = false;
  await refresh();
  connect(0);
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const created = await api("POST", "/api/sessions", { project: form.get("project"), model: form.get("model") });
  params.set("session", created.session_id);
  location.search = params.toString();
});

// ---- live feed ------------------------------------------------------------------------------

function connect(after) {
  const query = new URLSearchParams({ after: String(after) });
  if (TOKEN) query.set("token", TOKEN);
  const source = new EventSource(`${base()}/events?${query}`);
  state.source = source;
  $("connection").dataset.state = "connecting";
  source.onopen = () => { $("connection").dataset.state = "live"; };
  source.addEventListener("row", (event) => onRow(JSON.parse(event.data)));
  source.onerror = () => {
    $("connection").dataset.state = "down";
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => { if (state.source === source) connect(state.last); }, 1000);
    }
  };
}

function onRow(row) {
  if (row.position <= state.last) return; // already shown (a reconnect overlaps)
  state.last = row.position;
  state.rows.push(row);
  if (state.rows.length > MAX_ROWS) state.rows.shift();
  if (row.type === "chat_user" || row.type === "chat_reply") addChat(row);
  addTypeOption(row.type);
  if (visible(row)) {
    const feed = $("feed");
    feed.prepend(feedRow(row));
    while (feed.childElementCount > MAX_ROWS) feed.lastElementChild.remove();
  }
  scheduleRefresh();
}

function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(async () => {
    state.refreshTimer = null;
    try { await refresh(); } catch (_) { /* shown by api() */ }
  }, 150);
}

function addChat(row) {
  const user = row.type === "chat_user";
  $("chat").append(el("li", { class: user ? "user" : "reply" }, el("b", {}, user ? "You" : row.actor), row.payload.text));
  $("chat").scrollTop = $("chat").scrollHeight;
}

// ---- feed rows ------------------------------------------------------------------------------

function visible(row) {
  const team = $("filter-team").value;
  const agent = $("filter-agent").value;
  const type = $("filter-type").value;
  if (team && row.team_id !== team) return false;
  if (agent && row.agent_id !== agent) return false;
  if (type && row.type !== type) return false;
  if (row.type === "status" && !$("show-status").checked && type !== "status") return false;
  return true;
}

function feedRow(row) {
  const time = new Date(row.recorded_at * 1000).toLocaleTimeString();
  const details = el("details", {}, el("summary", {}, `${row.kind} · #${row.position}`), el("pre"));
  details.addEventListener("toggle", () => {
    const pre = details.querySelector("pre");
    if (details.open && !pre.textContent) pre.textContent = JSON.stringify(row.payload, null, 2);
  });
  return el(
    "li",
    { class: `row type-${row.type}`, "data-type": row.type, "data-kind": row.kind, "data-agent": row.actor, "data-position": row.position },
    el("div", { class: "head" },
      el("time", {}, time),
      el("span", { class: "type" }, row.type.replace(/_/g, " ")),
      el("span", { class: "actor" }, row.actor),
      row.team ? el("span", { class: "team" }, row.team) : null,
      el("span", { class: "summary" }, row.summary)),
    details,
  );
}

function refilter() {
  const feed = $("feed");
  feed.replaceChildren(...state.rows.filter(visible).reverse().map(feedRow));
}

function addTypeOption(type) {
  const select = $("filter-type");
  if ([...select.options].some((o) => o.value === type)) return;
  select.append(el("option", { value: type }, type.replace(/_/g, " ")));
}

for (const id of ["filter-team", "filter-agent", "filter-type", "show-status"]) {
  $(id).addEventListener("change", refilter);
}

function syncOptions(select, items) {
  const current = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...items.map(([value, label]) => el("option", { value }, label)));
  select.value = items.some(([value]) => value === current) ? current : "";
}

// ---- session view ---------------------------------------------------------------------------

async function refresh() {
  const detail = await api("GET", base());
  state.detail = detail;
  renderStatus(detail);
  renderAgents(detail);
  renderTeams(detail);
  renderTasks(detail);
  renderBudgets(detail);
  renderPermissions(detail);
  syncOptions($("filter-team"), detail.teams.map((t) => [t.team_id, t.name]));
  syncOptions($("filter-agent"), detail.agents.map((a) => [a.agent_id, `${a.name} (${a.team_name})`]));
}

function renderStatus(detail) {
  const pill = $("run-status");
  const paused = detail.agents.filter((a) => a.status === "paused").length;
  let stateName = "idle";
  let text = "idle";
  if (detail.permissions.length) { stateName = "waiting"; text = `waiting for you (${detail.permissions.length})`; }
  else if (detail.working) { stateName = "working"; text = `working (${detail.working} agents)`; }
  if (paused) text += ` · ${paused} paused`;
  pill.dataset.state = stateName;
  pill.textContent = text;
}

function renderAgents(detail) {
  const box = $("agents");
  const cards = detail.agents.map(agentCard);
  const focused = document.activeElement;
  const typing = focused && focused.tagName === "TEXTAREA" && focused.closest(".steer-form");
  const keep = typing ? focused.closest(".card").dataset.agentId : null;
  const old = keep ? box.querySelector(`[data-agent-id="${keep}"]`) : null;
  // Never rebuild the card the user is typing guidance into.
  box.replaceChildren(...cards.map((c) => (old && c.dataset.agentId === keep ? old : c)));
}

function agentCard(agent) {
  const paused = agent.status === "paused";
  const doing = agent.current_tool ? `tool: ${agent.current_tool}` : agent.task_title ? `task: ${agent.task_title}` : "";
  const act = (label, fn, opts = {}) => el("button", { type: "button", onclick: fn, disabled: opts.disabled, class: opts.cls, "data-action": opts.action || label.toLowerCase() }, label);
  const waiting = agent.status === "waiting_permission";
  const card = el("article", { class: `card st-${agent.status}`, "data-agent": agent.name, "data-agent-id": agent.agent_id, "data-status": agent.status },
    el("header", {},
      el("span", { class: "name" }, agent.name),
      el("span", { class: "meta" }, `${agent.role} · ${agent.team_name}`),
      agent.pause_queued ? el("span", { class: "badge" }, "pause queued") : null,
      el("span", { class: "status" }, agent.status.replace(/_/g, " "))),
    el("div", { class: "doing" }, doing || el("span", { class: "muted" }, "—")),
    el("div", { class: "meta" }, `${agent.input_tokens + agent.output_tokens} tokens · ${money(agent.cost_usd)}`),
    el("div", { class: "actions" },
      act("Pause", () => control(agent, "pause", { mode: "asap" }), { disabled: paused }),
      waiting ? act("Force pause", () => control(agent, "pause", { mode: "asap", force: true }), { action: "force-pause" }) : null,
      act("Resume", () => control(agent, "resume"), { disabled: !paused }),
      act("Steer", () => toggleSteer(agent)),
      act("Cancel", () => control(agent, "cancel"), { cls: "danger" }),
      act("Inspect", () => inspect(agent))),
  );
  if (state.steering[agent.agent_id]) card.append(steerForm(agent));
  return card;
}

function toggleSteer(agent) {
  state.steering[agent.agent_id] = !state.steering[agent.agent_id];
  renderAgents(state.detail);
  const input = document.querySelector(`[data-agent-id="${agent.agent_id}"] textarea`);
  if (input) input.focus();
}

function steerForm(agent) {
  const text = el("textarea", { name: "guidance", placeholder: `Guidance for ${agent.name}…`, "aria-label": `Guidance for ${agent.name}` });
  const form = el("form", { class: "steer-form" }, text, el("button", { type: "submit", class: "primary" }, "Send guidance"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    await control(agent, "steer", { text: text.value });
    state.steering[agent.agent_id] = false;
    document.activeElement.blur();
    await refresh();
  });
  return form;
}

async function control(agent, action, body) {
  await api("POST", `${base()}/agents/${encodeURIComponent(agent.agent_id)}/${action}`, body);
  scheduleRefresh();
}

async function inspect(agent) {
  const result = await api("GET", `${base()}/agents/${encodeURIComponent(agent.agent_id)}/inspect`);
  $("inspect-title").textContent = `Inspect ${agent.name}`;
  $("inspect-body").textContent = JSON.stringify(result.snapshot, null, 2);
  $("inspect-dialog").showModal();
}

// ---- permission prompts ---------------------------------------------------------------------

function renderPermissions(detail) {
  const box = $("permissions");
  const shown = new Set([...box.children].map((c) => c.dataset.requestId));
  const wanted = new Set(detail.permissions.map((p) => p.request_id));
  for (const child of [...box.children]) if (!wanted.has(child.dataset.requestId)) child.remove();
  for (const prompt of detail.permissions) if (!shown.has(prompt.request_id)) box.append(promptCard(prompt));
}

function promptCard(prompt) {
  const answer = (decision) => async () => {
    await api("POST", `${base()}/permissions/${encodeURIComponent(prompt.request_id)}`, { decision });
    card.remove();
    scheduleRefresh();
  };
  const card = el("section", { class: "prompt", "data-request-id": prompt.request_id, role: "dialog", "aria-label": "Permission required" },
    el("h3", {}, "Permission required"),
    el("dl", {},
      el("dt", {}, "Agent"), el("dd", {}, prompt.agent),
      el("dt", {}, "Tool"), el("dd", { class: "tool" }, prompt.tool),
      el("dt", {}, "Path"), el("dd", { class: "target" }, prompt.target || "—"),
      el("dt", {}, "Arguments"), el("dd", {}, el("pre", {}, short(JSON.stringify(prompt.arguments, null, 2), 2000)))),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "danger", onclick: answer("deny") }, "Deny"),
      el("button", { type: "button", onclick: answer("allow_once") }, "Allow once"),
      el("button", { type: "button", class: "primary", onclick: answer("allow_always") }, "Allow always")),
  );
  return card;
}

// ---- pictures -------------------------------------------------------------------------------

function renderTeams(detail) {
  const tree = $("team-tree");
  const byId = new Map(detail.teams.map((t) => [t.team_id, t]));
  const order = [];
  const visit = (team, depth) => {
    order.push([team, depth]);
    for (const child of team.child_ids) if (byId.has(child)) visit(byId.get(child), depth + 1);
  };
  for (const team of detail.teams) if (!team.parent_team_id || !byId.has(team.parent_team_id)) visit(team, 0);
  const rowH = 34;
  tree.replaceChildren();
  tree.setAttribute("height", Math.max(rowH, order.length * rowH));
  const place = new Map();
  order.forEach(([team, depth], i) => {
    const x = 10 + depth * 22;
    const y = 14 + i * rowH;
    place.set(team.team_id, [x, y]);
    const parent = place.get(team.parent_team_id);
    if (parent) tree.append(svg("path", { class: "link", d: `M${parent[0]},${parent[1] + 6} V${y} H${x - 6}` }));
    const agents = team.agent_ids.length;
    tree.append(svg("circle", { class: `team-node ${team.status}`, cx: x, cy: y, r: 6 }));
    tree.append(svg("text", { x: x + 12, y: y + 4, "data-team": team.name }, `${team.name}${team.status === "dissolved" ? " (dissolved)" : ""}`));
    tree.append(svg("text", { class: "sub", x: x + 12, y: y + 17 }, `${agents} agent${agents === 1 ? "" : "s"}${team.purpose ? ` · ${short(team.purpose, 40)}` : ""}`));
  });
}

function layers(detail) {
  const deps = new Map(detail.tasks.map((t) => [t.task_id, []]));
  for (const d of detail.dependencies) if (deps.has(d.task_id) && deps.has(d.depends_on)) deps.get(d.task_id).push(d.depends_on);
  const depth = new Map();
  const walk = (id, seen) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0; // informs edges may point backwards; never loop
    seen.add(id);
    const value = Math.max(-1, ...deps.get(id).map((p) => walk(p, seen))) + 1;
    depth.set(id, value);
    return value;
  };
  for (const id of deps.keys()) walk(id, new Set());
  return depth;
}

function renderTasks(detail) {
  const graph = $("task-graph");
  graph.replaceChildren();
  if (!detail.tasks.length) {
    graph.setAttribute("height", 30);
    graph.append(svg("text", { x: 4, y: 18, class: "sub" }, "no tasks yet"));
    return;
  }
  const depth = layers(detail);
  const columns = [];
  for (const task of detail.tasks) (columns[depth.get(task.task_id)] ||= []).push(task);
  const w = 150, h = 40, gapX = 36, gapY = 14;
  const pos = new Map();
  columns.forEach((column, c) => (column || []).forEach((task, r) => pos.set(task.task_id, [8 + c * (w + gapX), 8 + r * (h + gapY)])));
  const width = 16 + columns.length * (w + gapX);
  const height = 16 + Math.max(...columns.map((col) => (col || []).length)) * (h + gapY);
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  graph.setAttribute("height", Math.min(height, 420));
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#7b8494" }));
  defs.append(marker);
  graph.append(defs);
  for (const d of detail.dependencies) {
    const from = pos.get(d.depends_on), to = pos.get(d.task_id);
    if (!from || !to) continue;
    const x1 = from[0] + w, y1 = from[1] + h / 2, x2 = to[0], y2 = to[1] + h / 2;
    const mid = (x1 + x2) / 2;
    const edge = svg("path", { class: `edge ${d.kind}`, d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}`, "marker-end": "url(#arrow)", "data-kind": d.kind });
    edge.append(svg("title", {}, `${d.kind}${d.milestone ? ` (milestone ${d.milestone})` : ""}`));
    graph.append(edge);
  }
  for (const task of detail.tasks) {
    const [x, y] = pos.get(task.task_id);
    const node = svg("g", { class: `task-node st-${task.status}`, transform: `translate(${x},${y})`, "data-task": task.title, "data-status": task.status });
    node.append(svg("title", {}, `${task.title}\n${task.status}${task.owner ? ` · ${task.owner}` : ""} · p${task.effective_priority}`));
    node.append(svg("rect", { width: w, height: h }));
    node.append(svg("text", { x: 8, y: 16 }, short(task.title, 22)));
    node.append(svg("text", { x: 8, y: 31, class: "sub" }, `${task.status.replace(/_/g, " ")}${task.owner ? ` · ${task.owner}` : ""}`));
    graph.append(node);
  }
}

function budgetBar(budget) {
  const limit = budget.limit_usd ?? null;
  const tokenLimit = budget.limit_tokens ?? null;
  const share = limit ? budget.cost_usd / limit : tokenLimit ? budget.tokens / tokenLimit : 0;
  const limitText = limit ? ` of ${money(limit)}` : tokenLimit ? ` · ${budget.tokens}/${tokenLimit} tokens` : " · no limit";
  const fill = el("div", { class: `fill${share >= 1 ? " over" : share >= 0.8 ? " high" : ""}`, style: `width:${Math.min(100, share * 100).toFixed(1)}%` });
  return el("div", { class: "budget", "data-scope": budget.scope, "data-name": budget.name },
    el("div", {}, el("b", {}, budget.scope === "session" ? "Session" : `Team ${budget.name}`), ` ${money(budget.cost_usd)}${limitText} · ${budget.tokens} tokens`),
    el("div", { class: "bar" }, fill));
}

function renderBudgets(detail) {
  const session = detail.budgets.filter((b) => b.scope === "session");
  $("session-budget").replaceChildren(...session.map(budgetBar));
  $("budgets").replaceChildren(...detail.budgets.map(budgetBar));
}

// ---- chat -----------------------------------------------------------------------------------

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  await api("POST", `${base()}/messages`, { text });
  input.value = "";
});

start().catch((error) => { $("run-status").textContent = `error: ${error.message}`; });
