// The Speculation panel: tasks started ahead of their blockers (SPEC §3.7).
//
// Reads GET /speculations (each speculation with its assumptions, verdicts, the judge's
// model calls, the work at stake or the waste; the session's counts and learnt hit rates)
// and fetches it again when a speculation row or a model call arrives on the live stream, at
// most once a second (a user's cancel at once). A running speculation can be cancelled (POST
// …/speculation/cancel, with the page's token), on a session this server hosts or one a
// worker of its cluster runs (the server sends both the reads and the cancel to that worker).
// The task graph gets a badge on every task that speculated, and a task's detail view a
// "Speculation" section.
"use strict";

import { $, api, duration, el, money, num, short, svg, toast } from "./util.js";

const view = { base: null, live: () => false, titles: () => new Map(), list: [], summary: null, byTask: new Map(), busy: false, again: false, last: 0, timer: 0 };

const NOT_RUNNING = {
  404: "Speculations show for a session open on this server.",
  409: "Speculations show while a worker of the cluster runs this session.",
  503: "The worker running this session did not answer; speculations show once it does.",
};

const OUTCOMES = {
  assumption_failed: ["failed · discarded", "failed"],
  merge_conflict: ["merge conflict · discarded", "failed"],
  cancelled: ["cancelled", "cancelled"],
  preempted: ["preempted · discarded", "cancelled"],
  crashed: ["lost in a restart · discarded", "failed"],
  failed: ["task failed · discarded", "failed"],
};

/** What a speculation's state reads as: [label, css kind]. */
function status(spec) {
  if (spec.state === "running") {
    const task = view.titles().get(spec.task_id);
    return [task && task.status === "completed_tentative" ? "running · done, awaiting check" : "running", "running"];
  }
  if (spec.state === "merged") return ["held · merged", "merged"];
  if (spec.state === "declined") return ["declined", "declined"];
  return OUTCOMES[spec.outcome?.reason] || ["discarded", "failed"];
}

const title = (taskId) => view.titles().get(taskId)?.title || taskId;
const value = (v) => (typeof v === "string" ? v : JSON.stringify(v));

/** "12 s · 1,234 tokens · $0.0012 · 3 model calls" */
function work({ s, tokens, usd, calls }) {
  return `${duration(s || 0)} · ${num(tokens)} tokens · ${money(usd)} · ${num(calls)} model call${calls === 1 ? "" : "s"}`;
}

export function setupSpeculation({ base, live, titles }) {
  view.base = base;
  view.live = live;
  view.titles = titles;
  refresh(true);
  // The time at stake grows while a speculation runs, with or without events.
  setInterval(() => { if (view.list.some((s) => s.state === "running") && !document.hidden) refresh(); }, 5000);
}

/** Live rows: a speculation step, or spend that may be at stake, asks for a fresh list. */
export function speculationRows(rows) {
  const running = view.list.some((s) => s.state === "running");
  if (rows.some((r) => r.type === "speculation" || (running && r.kind === "model_call_completed"))) refresh();
}

function refresh(urgent = false) {
  if (!view.base) return;
  if (view.busy) { view.again = true; return; }
  view.busy = true;
  const wait = urgent ? 0 : Math.max(0, 1000 - (performance.now() - view.last));
  clearTimeout(view.timer);
  view.timer = setTimeout(async () => {
    try {
      const out = await api("GET", `${view.base()}/speculations`, undefined, { quiet: true });
      view.list = out.speculations;
      view.summary = out.summary;
      view.byTask = new Map(out.speculations.map((s) => [s.task_id, s]));
      render();
    } catch (error) {
      // Only a running session has a speculation service to ask: one open on this server, or
      // one a worker of its cluster runs (asked over the cluster: 503 while it moves between
      // workers). What was shown last stays; the next row or tick asks again.
      const why = NOT_RUNNING[error.status];
      if (why && !view.list.length) $("speculations").replaceChildren(el("p", { class: "muted", "data-unavailable": String(error.status) }, why));
    }
    view.last = performance.now();
    view.busy = false;
    if (view.again) { view.again = false; refresh(); }
  }, wait);
}

// ---- the panel --------------------------------------------------------------------------------

function render() {
  const box = $("speculations");
  if (!box) return;
  const shown = view.list.filter((s) => s.state !== "declined");
  const order = (s) => (s.state === "running" ? 0 : 1);
  const sorted = shown.map((s, i) => [s, i]).sort((a, b) => order(a[0]) - order(b[0]) || b[1] - a[1]).map(([s]) => s);
  box.replaceChildren(...(sorted.length ? sorted.slice(0, 60).map(card) : [el("p", { class: "muted" }, "No task has started ahead of its blockers yet.")]));
  $("spec-count").textContent = shown.length ? `${shown.filter((s) => s.state === "running").length} running · ${shown.length} in all` : "";
  $("spec-summary").replaceChildren(...summary(view.summary));
  decorateGraph();
}

function card(spec) {
  const [label, kind] = status(spec);
  const ahead = spec.blockers.map((b) => `“${short(title(b), 40)}”`).join(", ");
  const decision = spec.decision;
  const meta = [`${spec.agent} ahead of ${ahead}`];
  if (decision) meta.push(`p(hold) ${decision.p_hold.toFixed(2)}`);
  const parts = [
    el("header", {},
      el("span", { class: "spec-mark", "aria-hidden": "true" }, "⚡"),
      el("span", { class: "name" }, title(spec.task_id)),
      el("span", { class: `spec-state ss-${kind}` }, label)),
    el("div", { class: "meta" }, meta.join(" · ")),
    assumptions(spec),
  ];
  const outcome = spec.outcome;
  if (spec.state === "running" && spec.at_stake) {
    const s = spec.at_stake;
    parts.push(el("p", { class: "stake" }, el("b", {}, "At stake: "), work({ s: s.s, tokens: s.tokens, usd: s.usd, calls: s.model_calls })));
    parts.push(el("div", { class: "actions" }, el("button", {
      type: "button", class: "danger small", "data-live": "", disabled: !view.live(),
      onclick: (event) => cancel(spec, event.target),
    }, "Cancel speculation")));
  } else if (outcome && outcome.kind === "speculation_discarded") {
    parts.push(el("p", { class: "waste" }, el("b", {}, "Wasted: "), work({ s: outcome.wasted_s, tokens: outcome.wasted_tokens, usd: outcome.wasted_usd, calls: outcome.wasted_model_calls })));
    // A failed check's detail repeats the verdicts shown above; other reasons say more.
    if (outcome.detail && outcome.reason !== "assumption_failed") parts.push(el("p", { class: "detail muted" }, short(outcome.detail, 300)));
  } else if (outcome && outcome.kind === "speculation_merged") {
    const files = outcome.files.length ? outcome.files.join(", ") : "no files";
    parts.push(el("p", { class: "saved" }, el("b", {}, "Merged: "), `${files} · ran ${duration(outcome.saved_s)} ahead`));
  }
  return el("article", { class: `spec-card sk-${kind}`, "data-task-id": spec.task_id, "data-state": spec.state, "data-outcome": outcome?.reason || spec.state }, ...parts);
}

function assumptions(spec) {
  const verdicts = new Map();
  for (const checked of spec.verdicts) for (const v of checked.verdicts) verdicts.set(v.assumption_id, v);
  const judged = new Map(spec.judgements.map((j) => [j.assumption_id, j]));
  if (!spec.assumptions.length) return el("p", { class: "muted" }, "No assumption stated (nothing can be confirmed).");
  return el("ul", { class: "assumptions" }, ...spec.assumptions.map((a) => {
    const v = verdicts.get(a.assumption_id);
    const state = v ? (v.holds ? "holds" : "fails") : "pending";
    const mark = { holds: "✓", fails: "✗", pending: "…" }[state];
    const what = a.key
      ? el("code", { class: "structured" }, `${a.key} = ${short(value(a.value), 160)}`)
      : el("q", { class: "prose" }, short(a.text, 300));
    const why = [];
    if (v && a.key && !v.holds) why.push(v.reasoning || `actual: ${short(value(v.actual), 160)}`);
    const j = judged.get(a.assumption_id);
    if (v && !a.key) {
      const call = j ? ` (${j.model} · ${num(j.input_tokens + j.output_tokens)} tokens · ${money(j.cost_usd)})` : "";
      why.push(el("span", { class: "judge" }, el("b", {}, `judge${call}: `), v.reasoning || "—"));
    }
    const blocker = spec.blockers.length > 1 ? el("span", { class: "muted on" }, ` on “${short(title(a.on_task), 30)}”`) : null;
    return el("li", { class: `assumption a-${state}`, "data-assumption-id": a.assumption_id, "data-verdict": state },
      el("span", { class: "verdict", title: { holds: "held", fails: "failed", pending: "not checked yet" }[state] }, mark), " ",
      el("span", { class: "kind" }, a.key ? "exact" : "prose"), " ", what, blocker,
      why.length ? el("div", { class: "why" }, ...why) : null);
  }));
}

function summary(s) {
  if (!s || !s.started) return [];
  const counts = `${s.started} started · ${s.held} held · ${s.failed} failed · ${s.merged} merged · ${s.discarded} discarded · ${s.running} running`;
  const rows = [
    ["Outcomes", counts],
    ["Waste", `${work({ s: s.wasted_s, tokens: s.wasted_tokens, usd: s.wasted_usd, calls: s.wasted_model_calls })} · ${(100 * s.waste_fraction).toFixed(1)} % of all tokens`],
    ["Saved", `${duration(s.saved_s)} ahead of blockers (merged work)`],
  ];
  if (s.judge_calls) rows.push(["Judge", `${num(s.judge_calls)} model call${s.judge_calls === 1 ? "" : "s"} · ${num(s.judge_tokens)} tokens · ${money(s.judge_usd)}`]);
  const rates = Object.entries(s.hit_rates);
  if (rates.length) rows.push(["Hit rates", rates.map(([k, p]) => `${k} ${(100 * p).toFixed(0)} %`).join(" · ")]);
  return [el("dl", { class: "facts spec-facts" }, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-fact": k.toLowerCase().replace(" ", "-") }, v)]))];
}

async function cancel(spec, button) {
  button.disabled = true;
  button.dataset.off = "1";
  try {
    await api("POST", `${view.base()}/tasks/${encodeURIComponent(spec.task_id)}/speculation/cancel`);
    toast(`Speculation on “${short(title(spec.task_id), 60)}” cancelled: its work is discarded and the task re-queued`);
  } catch (_) {
    button.disabled = false; // api() has shown why
    delete button.dataset.off;
  }
  refresh(true);
}

// ---- the task graph and the task's detail ----------------------------------------------------

const BADGES = { running: "⚡ speculative", merged: "⚡ merged", failed: "⚡ redone", cancelled: "⚡ cancelled" };
const SPECULATIVE = new Set(["pending_speculative", "completed_tentative"]);

/** Badge every graph node whose task is or was speculative (called after each graph render). */
export function decorateGraph() {
  for (const node of document.querySelectorAll("#task-graph g.task-node")) {
    node.querySelector(".spec-badge")?.remove();
    const spec = view.byTask.get(node.dataset.taskId);
    let kind = spec && spec.state !== "declined" ? status(spec)[1] : null;
    if (SPECULATIVE.has(node.dataset.status)) kind = "running";
    if (!kind) { delete node.dataset.speculation; continue; }
    node.dataset.speculation = kind;
    const text = BADGES[kind];
    const width = Number(node.querySelector("rect").getAttribute("width"));
    const w = 10 + text.length * 6.2;
    const badge = svg("g", { class: `spec-badge sb-${kind}`, transform: `translate(${width - w - 6},-7)` });
    badge.append(svg("rect", { width: w, height: 14, rx: 7 }), svg("text", { x: w / 2, y: 10.5, "text-anchor": "middle" }, text));
    node.append(badge);
  }
}

/** The "Speculation" section of a task's detail view (null when it never speculated). */
export function speculationSection(taskId) {
  const spec = view.byTask.get(taskId);
  if (!spec || spec.state === "declined") return null;
  return el("section", { class: "task-speculation" }, el("h3", {}, "Speculation"), card(spec));
}
