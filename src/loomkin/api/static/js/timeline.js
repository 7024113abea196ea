// The timeline (agents × time: tasks, model calls and tool calls) and tokens and cost over
// time (a line per agent, and the team's total), drawn on canvases: thousands of spans cost
// one draw, not thousands of DOM nodes.
"use strict";

import { $, clock, compact, duration, money } from "./util.js";

const LANE_H = 26, LEFT = 110, PAD = 8;
const COLORS = ["#3559e0", "#d97706", "#1f9d55", "#c026d3", "#0891b2", "#d64545", "#7c3aed", "#65a30d"];

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

function canvas(node, width, height) {
  const ratio = window.devicePixelRatio || 1;
  node.width = Math.round(width * ratio);
  node.height = Math.round(height * ratio);
  node.style.height = `${height}px`;
  const ctx = node.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.font = "11px system-ui, sans-serif";
  return ctx;
}

export function renderTimeline(data, width) {
  const node = $("timeline");
  const lanes = data.lanes;
  const height = PAD * 2 + Math.max(1, lanes.length) * LANE_H + 18;
  const ctx = canvas(node, width, height);
  node.dataset.spans = String(data.spans.length);
  node.dataset.lanes = String(lanes.length);
  const ink = css("--ink"), muted = css("--muted"), line = css("--line");
  ctx.clearRect(0, 0, width, height);
  const now = Date.now() / 1000;
  const t0 = data.start, t1 = Math.max(data.end, ...data.spans.map((s) => s.end ?? Math.min(now, data.end + 1)), t0 + 1);
  const x = (t) => LEFT + ((t - t0) / (t1 - t0)) * (width - LEFT - PAD);
  const row = new Map(lanes.map((lane, i) => [lane.agent_id, i]));
  lanes.forEach((lane, i) => {
    const y = PAD + i * LANE_H;
    ctx.fillStyle = i % 2 ? "transparent" : line;
    ctx.globalAlpha = 0.35;
    ctx.fillRect(0, y, width, LANE_H);
    ctx.globalAlpha = 1;
    ctx.fillStyle = ink;
    ctx.fillText(lane.name.length > 15 ? `${lane.name.slice(0, 14)}…` : lane.name, 4, y + 16);
  });
  for (const kind of ["task", "model", "tool"]) {
    for (const span of data.spans) {
      if (span.kind !== kind || !row.has(span.agent_id)) continue;
      const y = PAD + row.get(span.agent_id) * LANE_H;
      const a = x(span.start), b = Math.max(a + 2, x(span.end ?? t1));
      if (kind === "task") { ctx.fillStyle = "rgba(31,157,85,.22)"; ctx.fillRect(a, y + 2, b - a, LANE_H - 4); }
      else if (kind === "model") { ctx.fillStyle = span.outcome === "error" ? "#d64545" : "#7c5cd6"; ctx.fillRect(a, y + 6, b - a, 7); }
      else { ctx.fillStyle = span.outcome && span.outcome !== "ok" ? "#d97706" : "#2f80ed"; ctx.fillRect(a, y + 14, b - a, 7); }
    }
  }
  ctx.fillStyle = muted;
  const axisY = height - 6;
  ctx.fillText(clock(t0), LEFT, axisY);
  const end = clock(t1);
  ctx.fillText(end, width - PAD - ctx.measureText(end).width, axisY);
  const span = `${duration(t1 - t0)}`;
  ctx.fillText(span, (LEFT + width) / 2 - ctx.measureText(span).width / 2, axisY);
}

export function renderSpend(data, width, metric) {
  const node = $("spend");
  const height = 190;
  const ctx = canvas(node, width, height);
  const muted = css("--muted"), ink = css("--ink");
  ctx.clearRect(0, 0, width, height);
  const points = data.spend;
  node.dataset.points = String(points.length);
  const value = (p) => (metric === "cost" ? p.cost_usd : p.tokens);
  const fmt = metric === "cost" ? money : compact;
  if (!points.length) { ctx.fillStyle = muted; ctx.fillText("no model calls yet", 8, 20); return; }
  // The team line: the sum of every agent's latest running total at each point.
  const latest = new Map();
  const team = points.map((p) => { latest.set(p.agent_id, value(p)); let sum = 0; for (const v of latest.values()) sum += v; return { t: p.t, v: sum }; });
  const t0 = data.start, t1 = Math.max(data.end, t0 + 1);
  const top = team[team.length - 1].v || 1;
  const left = 64, right = width - 8, bottom = height - 22;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (right - left);
  const y = (v) => bottom - (v / top) * (bottom - 10);
  ctx.strokeStyle = muted; ctx.globalAlpha = 0.4;
  ctx.beginPath(); ctx.moveTo(left, 10); ctx.lineTo(left, bottom); ctx.lineTo(right, bottom); ctx.stroke();
  ctx.globalAlpha = 1;
  ctx.fillStyle = muted;
  ctx.fillText(fmt(top), 2, 16); ctx.fillText(fmt(0), 2, bottom);
  ctx.fillText(clock(t0), left, height - 6);
  const endText = clock(t1); ctx.fillText(endText, right - ctx.measureText(endText).width, height - 6);
  const lanes = data.lanes.filter((lane) => points.some((p) => p.agent_id === lane.agent_id));
  lanes.forEach((lane, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length];
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      if (p.agent_id !== lane.agent_id) continue;
      if (!started) { ctx.moveTo(x(p.t), y(0)); started = true; }
      ctx.lineTo(x(p.t), y(value(p)));
    }
    ctx.stroke();
  });
  ctx.strokeStyle = ink; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(x(team[0].t), y(0));
  for (const p of team) ctx.lineTo(x(p.t), y(p.v));
  ctx.stroke();
  ctx.lineWidth = 1;
  const legend = $("spend-legend");
  legend.replaceChildren(...[["team", ink, top], ...lanes.map((lane, i) => [lane.name, COLORS[i % COLORS.length], latestOf(points, lane.agent_id, value)])].map(([name, color, v]) => {
    const li = document.createElement("li");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color;
    li.append(sw, `${name} ${fmt(v)}`);
    return li;
  }));
}

function latestOf(points, agentId, value) {
  for (let i = points.length - 1; i >= 0; i--) if (points[i].agent_id === agentId) return value(points[i]);
  return 0;
}
