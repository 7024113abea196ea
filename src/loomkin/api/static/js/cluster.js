// The Cluster panel (`loomkin serve --bus`): the live workers with their load, and every
// session of the cluster with the worker running it (and, after a failover, those that ran
// it before). It asks GET /api/cluster every few seconds; a server without a cluster says
// so once (`cluster: null`) and the panel stays hidden.
"use strict";

import { $, api, el, num } from "./util.js";

const EVERY_MS = 3000;

/** Show the panel if the server runs a cluster, and keep it current. */
export async function setupCluster() {
  const load = async () => {
    let out;
    try { out = await api("GET", "/api/cluster", undefined, { quiet: true }); } catch (_) { return true; }
    if (!out.cluster) return false;
    render(out);
    return true;
  };
  if (await load()) setInterval(() => { if (!document.hidden) load(); }, EVERY_MS);
}

function render(out) {
  const panel = $("cluster");
  panel.hidden = false;
  $("cluster-name").textContent = out.cluster;
  const workers = out.workers.length
    ? out.workers.map((w) => el("li", { class: "worker", "data-worker": w.worker_id },
      el("strong", {}, w.worker_id), " ",
      el("span", { class: "muted" }, `${num(w.agents)} ${w.agents === 1 ? "agent" : "agents"} / ${num(w.capacity)} · ${num(w.sessions)} ${w.sessions === 1 ? "session" : "sessions"}${w.accepting ? "" : " · leaving"}`)))
    : [el("li", { class: "muted" }, "no live worker: start one with loomkin worker --store … --bus …")];
  const current = new URLSearchParams(location.search).get("session");
  const sessions = [...out.sessions].reverse().map((s) => {
    const query = new URLSearchParams(location.search);
    query.set("session", s.session_id);
    const where = s.status === "running" ? `on ${s.worker_id}` : "done";
    const moved = s.hosts.length > 1 ? ` (hosted by ${s.hosts.join(" → ")})` : "";
    return el("li", { class: "placement", "data-session": s.session_id, "data-status": s.status },
      el("a", { href: `?${query}`, "aria-current": s.session_id === current ? "page" : null }, s.title || s.session_id.slice(-8)),
      " ", el("span", { class: "muted" }, `${where}${moved}`));
  });
  $("cluster-workers").replaceChildren(...workers);
  $("cluster-sessions").replaceChildren(...(sessions.length ? sessions : [el("li", { class: "muted" }, "no session yet")]));
}
