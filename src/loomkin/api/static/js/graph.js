// The task graph: columns by dependency depth, whole titles (wrapped), milestones drawn on
// their task and on the edges that wait for them, and a detail view on click.
"use strict";

import { $, api, clock, el, svg, words } from "./util.js";
import { decorateGraph, speculationSection } from "./speculation.js";

const W = 210, LINE = 15, GAP_X = 46, GAP_Y = 16, CHARS = 30;

function wrap(text, width) {
  const lines = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (!word) continue;
    if (line && (line + " " + word).length > width) { lines.push(line); line = ""; }
    let rest = word;
    while (rest.length > width) { if (line) { lines.push(line); line = ""; } lines.push(rest.slice(0, width)); rest = rest.slice(width); }
    line = line ? `${line} ${rest}` : rest;
  }
  if (line) lines.push(line);
  return lines.length ? lines : [""];
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

export function renderTasks(detail, sessionBase) {
  const graph = $("task-graph");
  graph.replaceChildren();
  if (!detail.tasks.length) {
    graph.setAttribute("width", 200);
    graph.setAttribute("height", 30);
    graph.append(svg("text", { x: 4, y: 18, class: "sub" }, "no tasks yet"));
    return;
  }
  const depth = layers(detail);
  const columns = [];
  for (const task of detail.tasks) (columns[depth.get(task.task_id)] ||= []).push(task);
  const pos = new Map();
  let height = 0;
  columns.forEach((column, c) => {
    let y = 8;
    for (const task of column || []) {
      const lines = wrap(task.title, CHARS);
      const h = 12 + lines.length * LINE + 16 + (task.milestones.length ? 16 : 0);
      pos.set(task.task_id, { x: 8 + c * (W + GAP_X), y, h, lines });
      y += h + GAP_Y;
    }
    height = Math.max(height, y);
  });
  const width = 16 + columns.length * (W + GAP_X) - GAP_X;
  graph.setAttribute("width", width);
  graph.setAttribute("height", height);
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
  defs.append(marker);
  graph.append(defs);
  for (const d of detail.dependencies) {
    const from = pos.get(d.depends_on), to = pos.get(d.task_id);
    if (!from || !to) continue;
    const x1 = from.x + W, y1 = from.y + from.h / 2, x2 = to.x, y2 = to.y + to.h / 2;
    const mid = (x1 + x2) / 2;
    const edge = svg("path", { class: `edge ${d.kind}`, d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}`, "marker-end": "url(#arrow)", "data-kind": d.kind });
    edge.append(svg("title", {}, `${words(d.kind)}${d.milestone ? ` (milestone ${d.milestone})` : ""}`));
    graph.append(edge);
    if (d.milestone) {
      const label = svg("g", { class: "edge-milestone", transform: `translate(${mid},${(y1 + y2) / 2})` });
      label.append(svg("path", { d: "M0,-5 L5,0 L0,5 L-5,0 z" }));
      label.append(svg("text", { x: 8, y: 4 }, d.milestone));
      graph.append(label);
    }
  }
  for (const task of detail.tasks) {
    const { x, y, h, lines } = pos.get(task.task_id);
    const node = svg("g", { class: `task-node st-${task.status}`, transform: `translate(${x},${y})`, "data-task": task.title, "data-task-id": task.task_id, "data-status": task.status, tabindex: 0, role: "button", "aria-label": `Task ${task.title}` });
    node.append(svg("rect", { width: W, height: h }));
    lines.forEach((line, i) => node.append(svg("text", { x: 8, y: 17 + i * LINE, class: "title" }, line)));
    const meta = 17 + lines.length * LINE;
    node.append(svg("text", { x: 8, y: meta, class: "sub" }, `${words(task.status)}${task.owner ? ` · ${task.owner}` : ""} · p${task.effective_priority}`));
    if (task.milestones.length) {
      const g = svg("g", { class: "milestones", transform: `translate(8,${meta + 12})` });
      let mx = 0;
      for (const name of task.milestones) {
        g.append(svg("path", { d: `M${mx},-4 L${mx + 4},0 L${mx},4 L${mx - 4},0 z`, class: "milestone-mark" }));
        g.append(svg("text", { x: mx + 7, y: 4, class: "milestone" }, name));
        mx += 14 + name.length * 6.2;
      }
      node.append(g);
    }
    const open = () => openTask(sessionBase(), task.task_id);
    node.addEventListener("click", open);
    node.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(); } });
    graph.append(node);
  }
  decorateGraph();
}

async function openTask(base, taskId) {
  const dialog = $("task-dialog");
  const t = await api("GET", `${base}/tasks/${encodeURIComponent(taskId)}`);
  $("task-title").textContent = t.title;
  const list = (items) => (items.length ? el("ul", {}, ...items.map((i) => el("li", {}, i))) : el("span", { class: "muted" }, "none"));
  $("task-body").replaceChildren(
    el("dl", { class: "facts" },
      el("dt", {}, "Status"), el("dd", { class: "task-status" }, words(t.status)),
      el("dt", {}, "Owner"), el("dd", {}, t.owner || "—"),
      el("dt", {}, "Priority"), el("dd", {}, `${t.priority} (effective ${t.effective_priority})`),
      el("dt", {}, "Milestones"), el("dd", {}, t.milestones.join(", ") || "—"),
      el("dt", {}, "Depends on"), el("dd", {}, list(t.depends_on)),
      el("dt", {}, "Needed by"), el("dd", {}, list(t.dependents))),
    speculationSection(t.task_id),
    el("h3", {}, "Description"), el("p", { class: "description" }, t.description || "—"),
    el("h3", {}, "Status history"),
    el("ol", { class: "history" }, ...t.history.map((h) => el("li", { "data-kind": h.kind },
      el("time", {}, clock(h.recorded_at)), " ", el("b", {}, h.actor), " ", h.summary,
      h.detail ? el("pre", {}, h.detail) : null))),
    el("h3", {}, "Result"), t.result ? el("pre", { class: "result" }, t.result) : el("p", { class: "muted" }, "—"),
    el("h3", {}, "Hand-off"), t.handoff.length ? el("ul", { class: "handoff" }, ...t.handoff.map((l) => el("li", {}, l))) : el("p", { class: "muted" }, "—"),
  );
  if (!dialog.open) dialog.showModal();
}
