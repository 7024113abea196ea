// Agent cards, the team tree with its agents, budgets and the run summary.
//
// A card is rebuilt only when what it shows changed (its agent's record, its activity), and
// a steer draft lives in `drafts`, not in the DOM: a rebuilt card gets its text back, so a
// draft survives any number of events.
"use strict";

import { $, compact, duration, el, money, num, short, words } from "./util.js";

export const activity = {
  tool: new Map(),     // agent id → { name, target, since } of the running tool call
  text: new Map(),     // agent id → the agent's latest model answer text
  controls: new Map(), // agent id → Map(request id → action) of controls not applied yet
};
export const drafts = new Map();   // agent id → steer text being written
export const steering = new Set(); // agent ids whose steer box is open
const cardKeys = new Map();

/** Update the per-agent activity the cards show from one feed row. */
export function noteActivity(row) {
  const id = row.agent_id;
  if (!id) return false;
  const p = row.payload;
  switch (row.kind) {
    case "tool_call_started": activity.tool.set(id, { name: p.tool, target: p.target || "", since: row.recorded_at }); return true;
    case "tool_call_completed": activity.tool.delete(id); return true;
    case "model_call_completed": if (p.text) activity.text.set(id, p.text); return true;
    case "control_requested": {
      if (!activity.controls.has(id)) activity.controls.set(id, new Map());
      activity.controls.get(id).set(p.request_id, p.action);
      return true;
    }
    case "control_applied": case "control_dropped":
      activity.controls.get(id)?.delete(p.request_id);
      return true;
    default: return false;
  }
}

export function renderAgents(detail, { live, control, inspect }) {
  const box = $("agents");
  const now = Date.now() / 1000;
  const seen = new Set();
  let before = null;
  for (const agent of [...detail.agents].reverse()) {
    seen.add(agent.agent_id);
    const tool = activity.tool.get(agent.agent_id);
    const pending = [...(activity.controls.get(agent.agent_id)?.values() || [])];
    // Usage changes with every model call: it is updated in place; the card is rebuilt only
    // when what it says changed (status, task, tool, text, controls).
    const { input_tokens: _in, output_tokens: _out, cost_usd: _cost, ...said } = agent;
    const key = JSON.stringify([said, tool, pending, activity.text.get(agent.agent_id), steering.has(agent.agent_id), live]);
    let card = box.querySelector(`:scope > [data-agent-id="${CSS.escape(agent.agent_id)}"]`);
    const typing = card && card.contains(document.activeElement) && document.activeElement.tagName === "TEXTAREA";
    if (!card || (cardKeys.get(agent.agent_id) !== key && !typing)) {
      const fresh = agentCard(agent, { tool, pending, now, live, control, inspect });
      if (card) card.replaceWith(fresh); else box.insertBefore(fresh, before);
      card = fresh;
      cardKeys.set(agent.agent_id, key);
    } else {
      const usage = card.querySelector(".usage");
      const text = usageText(agent);
      if (usage && usage.textContent !== text) usage.textContent = text;
    }
    before = card;
  }
  for (const card of [...box.children]) if (!seen.has(card.dataset.agentId)) card.remove();
}

/** Refresh the elapsed time of running tool calls (cheap: text of a few spans). */
export function tickElapsed() {
  const now = Date.now() / 1000;
  for (const span of document.querySelectorAll("#agents .elapsed[data-since]")) {
    span.textContent = duration(Math.max(0, now - Number(span.dataset.since)));
  }
}

function agentCard(agent, { tool, pending, now, live, control, inspect }) {
  const id = agent.agent_id;
  const paused = agent.status === "paused";
  const waiting = agent.status === "waiting_permission";
  const act = (label, fn, opts = {}) => el("button", {
    type: "button", onclick: fn, disabled: !live || opts.disabled, class: opts.cls,
    "data-action": opts.action || label.toLowerCase(), "data-live": "",
  }, label);
  const text = activity.text.get(id);
  const card = el("article", { class: `card st-${agent.status}`, "data-agent": agent.name, "data-agent-id": id, "data-status": agent.status },
    el("header", {},
      el("span", { class: "name" }, agent.name),
      el("span", { class: "meta" }, `${agent.role} · ${agent.team_name}`,
        agent.worker ? el("span", { class: "worker", title: "the cluster worker its model calls run on" }, ` · on ${agent.worker}`) : null),
      el("span", { class: "status" }, words(agent.status))),
    el("dl", { class: "doing" },
      el("dt", {}, "Task"), el("dd", { class: "task" }, agent.task_title || el("span", { class: "muted" }, "—")),
      el("dt", {}, "Tool"), el("dd", { class: "tool" }, tool
        ? [`${tool.name} ${short(tool.target, 60)} `, el("span", { class: "elapsed", "data-since": tool.since }, duration(Math.max(0, now - tool.since)))]
        : agent.current_tool || el("span", { class: "muted" }, "—")),
      agent.streaming_text ? el("dt", {}, "Writing") : text ? el("dt", {}, "Said") : null,
      agent.streaming_text
        ? el("dd", { class: "streaming" }, `…${agent.streaming_text.replace(/\s+/g, " ").slice(-180)}`)
        : text ? el("dd", { class: "said" }, short(text.replace(/\s+/g, " "), 180)) : null),
    (agent.pause_queued || pending.length)
      ? el("div", { class: "pending" }, agent.pause_queued ? el("span", { class: "badge" }, "pause queued") : null,
        ...pending.filter((a) => !(agent.pause_queued && a === "pause")).map((a) => el("span", { class: "badge" }, `${a} pending`)))
      : null,
    el("div", { class: "meta usage" }, usageText(agent)),
    el("div", { class: "actions" },
      act("Pause", () => control(agent, "pause", { mode: "asap" }), { disabled: paused }),
      waiting ? act("Force pause", () => control(agent, "pause", { mode: "asap", force: true }), { action: "force-pause" }) : null,
      act("Resume", () => control(agent, "resume"), { disabled: !paused }),
      act("Steer", () => toggleSteer(agent)),
      act("Cancel", () => control(agent, "cancel"), { cls: "danger" }),
      el("button", { type: "button", onclick: () => inspect(agent), "data-action": "inspect", disabled: !live }, "Inspect")),
  );
  if (steering.has(id)) card.append(steerForm(agent, live, control));
  return card;
}

const usageText = (agent) => `${compact(agent.input_tokens + agent.output_tokens)} tokens · ${money(agent.cost_usd)}`;

function toggleSteer(agent) {
  if (steering.has(agent.agent_id)) steering.delete(agent.agent_id); else steering.add(agent.agent_id);
  document.dispatchEvent(new CustomEvent("loomkin:rerender"));
  requestAnimationFrame(() => document.querySelector(`[data-agent-id="${CSS.escape(agent.agent_id)}"] textarea`)?.focus());
}

function steerForm(agent, live, control) {
  const text = el("textarea", { name: "guidance", placeholder: `Guidance for ${agent.name}…`, "aria-label": `Guidance for ${agent.name}` });
  text.value = drafts.get(agent.agent_id) || "";
  text.addEventListener("input", () => drafts.set(agent.agent_id, text.value));
  const form = el("form", { class: "steer-form" }, text, el("button", { type: "submit", class: "primary", disabled: !live, "data-live": "" }, "Send guidance"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    await control(agent, "steer", { text: text.value });
    drafts.delete(agent.agent_id);
    steering.delete(agent.agent_id);
    document.activeElement.blur();
    document.dispatchEvent(new CustomEvent("loomkin:rerender"));
  });
  return form;
}

export function renderTeams(detail) {
  const byId = new Map(detail.teams.map((t) => [t.team_id, t]));
  const agents = new Map(detail.agents.map((a) => [a.agent_id, a]));
  const node = (team) => el("li", { class: `team ${team.status}`, "data-team": team.name },
    el("div", { class: "team-head" },
      el("span", { class: "team-dot" }),
      el("b", {}, team.name), team.status === "dissolved" ? el("span", { class: "muted" }, " (dissolved)") : null,
      team.purpose ? el("span", { class: "muted purpose" }, ` · ${team.purpose}`) : null),
    el("ul", { class: "members" }, ...team.agent_ids.map((id) => agents.get(id)).filter(Boolean).map((a) =>
      el("li", { class: `member st-${a.status}`, "data-agent": a.name },
        el("span", { class: "sdot" }), `${a.name} `, el("span", { class: "muted" }, `${a.role} · ${words(a.status)}`)))),
    team.child_ids.length ? el("ul", { class: "subteams" }, ...team.child_ids.map((c) => byId.get(c)).filter(Boolean).map(node)) : null);
  const roots = detail.teams.filter((t) => !t.parent_team_id || !byId.has(t.parent_team_id));
  $("team-tree").replaceChildren(...roots.map(node));
}

function budgetBar(budget) {
  const limit = budget.limit_usd ?? null;
  const tokenLimit = budget.limit_tokens ?? null;
  const share = limit ? budget.cost_usd / limit : tokenLimit ? budget.tokens / tokenLimit : 0;
  const limitText = limit ? ` of ${money(limit)}` : tokenLimit ? ` · ${num(budget.tokens)} / ${num(tokenLimit)} tokens` : "";
  const fill = el("div", { class: `fill${share >= 1 ? " over" : share >= 0.8 ? " high" : ""}`, style: `width:${Math.min(100, share * 100).toFixed(1)}%` });
  return el("div", { class: "budget", "data-scope": budget.scope, "data-name": budget.name },
    el("div", {}, el("b", {}, budget.scope === "session" ? "Session" : `Team ${budget.name}`), ` ${money(budget.cost_usd)}${limitText} · ${compact(budget.tokens)} tokens`),
    limit || tokenLimit ? el("div", { class: "bar" }, fill) : null);
}

export function renderBudgets(detail) {
  $("session-budget").replaceChildren(...detail.budgets.filter((b) => b.scope === "session").map(budgetBar));
  $("budgets").replaceChildren(...detail.budgets.map(budgetBar));
}

export function diffView(lines) {
  return el("pre", { class: "diff" }, ...lines.map((line) => el("span", {
    class: line.startsWith("+++") || line.startsWith("---") ? "dh" : line.startsWith("+") ? "da" : line.startsWith("-") ? "dd" : line.startsWith("@@") ? "dh" : "",
  }, `${line.replace(/\n$/, "")}\n`)));
}

export function renderSummary(report) {
  const tasks = Object.entries(report.tasks).map(([status, n]) => `${num(n)} ${words(status)}`).join(" · ") || "no tasks";
  $("summary").replaceChildren(
    el("dl", { class: "facts" },
      el("dt", {}, "Tasks"), el("dd", {}, tasks),
      el("dt", {}, "Calls"), el("dd", {}, `${num(report.model_calls)} model · ${num(report.tool_calls)} tool`),
      el("dt", {}, "Tokens"), el("dd", {}, `${num(report.input_tokens)} in · ${num(report.output_tokens)} out`),
      el("dt", {}, "Cost"), el("dd", { class: "cost" }, money(report.cost_usd))),
    el("h3", {}, `Files changed (${num(report.files.length)})`),
    report.files.length
      ? el("ul", { class: "files" }, ...report.files.map((f) => el("li", {}, el("details", {},
        el("summary", {}, f.path, el("span", { class: "muted" }, ` · ${num(f.writes)} write${f.writes === 1 ? "" : "s"}`)),
        diffView(f.diff)))))
      : el("p", { class: "muted" }, "none yet"),
    el("h3", {}, `Decisions (${num(report.decisions.length)})`),
    report.decisions.length ? el("ul", { class: "decisions" }, ...report.decisions.map((d) => el("li", {}, d))) : el("p", { class: "muted" }, "none yet"),
  );
}
