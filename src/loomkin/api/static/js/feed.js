// The activity feed: a windowed list (only the rows in view exist in the DOM), newest first.
//
// * Rows arrive in batches (the tail of the log at load, pages further back on scroll, live
//   rows from the stream) and are folded into entries: a call's start and its end (tool and
//   model calls, matched by call id) are one entry, shown as one row with its outcome and
//   duration.
// * Rendering happens once per frame, for the rows in view only, at a fixed row height, so
//   the cost does not grow with the session. Nothing reads layout per row.
// * While the reader is scrolled away from the top (reading), new rows do not move what
//   they read: the view is shifted by the rows added above and a "new rows" button shows.
"use strict";

import { $, clock, el, later, short, words } from "./util.js";

export const ROW_H = 30;
const OVERSCAN = 8;
const MAX_ENTRIES = 6000;
const ENDS = new Set(["tool_call_completed", "model_call_completed", "model_call_failed"]);
const STARTS = new Set(["tool_call_started", "model_call_started"]);

export class Feed {
  constructor({ onOpen, onNeedOlder }) {
    this.box = $("feed");
    this.list = $("feed-rows");
    this.spacer = $("feed-spacer");
    this.newer = $("feed-newer");
    this.onOpen = onOpen;
    this.onNeedOlder = onNeedOlder;
    this.entries = [];       // oldest first
    this.shown = [];         // entries passing the filters, oldest first
    this.calls = new Map();  // call id → entry whose end is still to come
    this.orphans = new Map(); // call id → an end entry whose start is not loaded (yet)
    this.nodes = new Map();   // entry → its row element, for the rows in view
    this.filter = { team: "", agent: "", type: "", text: "", status: false };
    this.unseen = 0;
    this.viewH = 400;
    this.more = true;
    this.loading = false;
    new ResizeObserver(([entry]) => { this.viewH = entry.contentRect.height; later("feed", () => this.render()); }).observe(this.box);
    this.box.addEventListener("scroll", () => later("feed", () => this.render()), { passive: true });
    this.newer.addEventListener("click", () => { this.box.scrollTop = 0; });
    this.list.addEventListener("click", (event) => {
      const li = event.target.closest("li[data-index]");
      if (li) this.onOpen(this.shown[Number(li.dataset.index)]);
    });
  }

  /** Fold live rows (newer than everything shown) in. */
  append(rows) {
    const added = [];
    for (const row of rows) {
      const entry = this.fold(row, this.calls);
      if (entry) { this.entries.push(entry); added.push(entry); }
    }
    if (this.entries.length > MAX_ENTRIES) {
      const drop = this.entries.length - MAX_ENTRIES + 500;
      for (const gone of this.entries.splice(0, drop)) {
        if (gone.callId) { this.calls.delete(gone.callId); this.orphans.delete(gone.callId); }
      }
      this.more = true;
      this.refilter();
      return;
    }
    const visible = added.filter((e) => this.passes(e));
    if (!visible.length) { if (rows.length) later("feed", () => this.render()); return; }
    this.shown.push(...visible);
    if (this.box.scrollTop > ROW_H / 2) {
      // Reading: keep the rows in view where they are; say how many came in above.
      this.box.scrollTop += visible.length * ROW_H;
      this.unseen += visible.length;
    }
    later("feed", () => this.render());
  }

  /** Fold a page of older rows (all older than the oldest shown) in. */
  prepend(rows) {
    const older = [];
    const local = new Map();
    for (const row of rows) {
      const entry = this.fold(row, local);
      if (entry) older.push(entry);
    }
    this.entries = [...older, ...this.entries.filter((e) => !e.merged)];
    this.refilter();
  }

  fold(row, calls) {
    const callId = row.payload && row.payload.call_id;
    const retry = row.kind === "model_call_failed" && row.payload.will_retry;
    const isEnd = ENDS.has(row.kind) && !retry;
    if (callId && retry && calls.has(callId)) calls.get(callId).retrying = true;  // between attempts
    if (callId && isEnd) {
      const start = calls.get(callId);
      if (start) { start.end = row; calls.delete(callId); this.index(start); return null; }
    }
    const entry = { row, end: null, callId, merged: false };
    if (callId && STARTS.has(row.kind)) {
      const orphan = this.orphans.get(callId);
      if (orphan) { entry.end = orphan.row; orphan.merged = true; this.orphans.delete(callId); }
      else calls.set(callId, entry);
    } else if (callId && isEnd) {
      this.orphans.set(callId, entry);
    }
    this.index(entry);
    return entry;
  }

  index(entry) {
    const old = this.nodes.get(entry);
    if (old) { old.remove(); this.nodes.delete(entry); } // its row changed: built again
    const r = entry.row;
    const end = entry.end ? ` ${entry.end.summary}` : "";
    entry.search = `${r.type} ${r.actor} ${r.team} ${r.summary}${end}`.toLowerCase();
  }

  passes(entry) {
    const f = this.filter;
    const row = entry.row;
    if (f.team && row.team_id !== f.team) return false;
    if (f.agent && row.agent_id !== f.agent) return false;
    if (f.type && row.type !== f.type) return false;
    if (row.type === "status" && !f.status && f.type !== "status") return false;
    if (f.text && !entry.search.includes(f.text)) return false;
    return true;
  }

  setFilter(patch) {
    Object.assign(this.filter, patch);
    this.refilter();
    this.box.scrollTop = 0;
  }

  refilter() {
    for (const li of this.nodes.values()) li.remove();
    this.nodes.clear(); // indices change: rows are built again
    this.shown = this.entries.filter((e) => !e.merged && this.passes(e));
    later("feed", () => this.render());
  }

  get oldest() { return this.entries.length ? this.entries[0].row.position : null; }

  render() {
    const total = this.shown.length;
    this.spacer.style.height = `${total * ROW_H}px`;
    const top = this.box.scrollTop;
    if (top <= ROW_H / 2) this.unseen = 0;
    this.newer.hidden = this.unseen === 0;
    this.newer.textContent = `↑ ${this.unseen} new`;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + this.viewH) / ROW_H) + OVERSCAN);
    // Rows already in view keep their element: a frame with one new row creates one element
    // and moves none of the others' content (only their order in the list changes).
    const items = [];
    for (let i = first; i < last; i++) {
      const index = total - 1 - i; // newest first
      const entry = this.shown[index];
      let li = this.nodes.get(entry);
      if (!li) { li = this.rowElement(entry, index); this.nodes.set(entry, li); }
      items.push(li);
    }
    const keep = new Set(items);
    for (const [entry, li] of this.nodes) if (!keep.has(li)) { this.nodes.delete(entry); li.remove(); }
    let cursor = this.list.firstElementChild;
    for (const li of items) {
      if (li === cursor) { cursor = cursor.nextElementSibling; continue; }
      this.list.insertBefore(li, cursor);
    }
    this.list.style.transform = `translateY(${first * ROW_H}px)`;
    $("feed-count").textContent = `${total.toLocaleString()} rows${this.more ? " · scroll for older" : ""}`;
    if (this.more && !this.loading && top + this.viewH > total * ROW_H - 12 * ROW_H) this.onNeedOlder();
  }

  rowElement(entry, index) {
    const row = entry.row;
    const end = entry.end;
    let outcome = null;
    if (end) {
      const took = end.recorded_at - row.recorded_at;
      const result = end.kind === "tool_call_completed" ? end.payload.outcome : end.kind === "model_call_failed" ? "failed" : "done";
      outcome = el("span", { class: `outcome oc-${result}` }, `${result} · ${took < 1 ? `${Math.round(took * 1000)} ms` : `${took.toFixed(1)} s`}`);
    } else if (entry.callId && this.calls.get(entry.callId) === entry) {
      outcome = el("span", { class: "outcome oc-running" }, entry.retrying ? "retrying" : "running");
    }
    const summary = end ? `${row.summary} → ${end.summary.replace(/^model answered: /, "")}` : row.summary;
    return el("li", {
      class: `row type-${row.type}`, "data-index": index, "data-type": row.type, "data-kind": row.kind,
      "data-kinds": end ? `${row.kind} ${end.kind}` : row.kind, "data-agent": row.actor,
      "data-position": row.position, title: short(summary, 400),
    },
    el("time", {}, clock(row.recorded_at)),
    el("span", { class: "type" }, words(row.type)),
    el("span", { class: "actor" }, row.actor),
    row.team ? el("span", { class: "team" }, row.team) : null,
    el("span", { class: "summary" }, summary),
    outcome);
  }
}
