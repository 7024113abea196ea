// Shared helpers: the HTTP client (with the token and visible network errors), DOM builders,
// number formatting and the one-per-frame scheduler every view renders through.
"use strict";

export const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

// ---- the token --------------------------------------------------------------------------------
// The server's token arrives once, in the URL `loomkin serve` prints (?token=...). Keep it in
// sessionStorage (this tab only) and take it out of the address bar, so it does not stay in
// the history or get copied along with the URL. API calls send it as a Bearer header;
// EventSource cannot, so the live stream's URL carries it (GET only).
export const TOKEN = (() => {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given) {
    try { sessionStorage.setItem("loomkin-token", given); } catch (_) { /* storage off */ }
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    return given;
  }
  try { return sessionStorage.getItem("loomkin-token"); } catch (_) { return null; }
})();

// ---- HTTP -------------------------------------------------------------------------------------

/** Raised for a request that never reached the server (it is down or the network is). */
export class Unreachable extends Error {}

const listeners = { unreachable: [], unauthorized: [] };
export function onNetwork(kind, fn) { listeners[kind].push(fn); }

export async function api(method, path, body, { quiet = false } = {}) {
  const headers = { Accept: "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const init = { method, headers };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    const message = method === "GET" ? "the server is unreachable" : "the server is unreachable: nothing was sent";
    if (!quiet) toast(message, "error");
    for (const fn of listeners.unreachable) fn();
    throw new Unreachable(message);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).detail || message; } catch (_) { /* not JSON */ }
    if (response.status === 401) for (const fn of listeners.unauthorized) fn();
    if (!quiet) toast(message, "error");
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

export function toast(text, kind = "info") {
  const box = $("toast");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 5000);
}

// ---- DOM --------------------------------------------------------------------------------------

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- formatting -------------------------------------------------------------------------------

const integer = new Intl.NumberFormat();
export const num = (n) => integer.format(n ?? 0);
export function money(usd) {
  const value = usd ?? 0;
  const digits = value === 0 ? 2 : value < 0.01 ? 4 : value < 1 ? 3 : 2;
  return new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}
export function compact(n) {
  return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(n ?? 0);
}
export function duration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
export const clock = (unix) => new Date(unix * 1000).toLocaleTimeString();
export const short = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
export const words = (text) => text.replace(/_/g, " ");

// ---- one render per frame ---------------------------------------------------------------------
// Views register work with `later(key, fn)`; everything registered before the next frame runs
// once, together, so a burst of events costs one DOM update and at most one layout.
const pending = new Map();
let frame = 0;
export function later(key, fn) {
  pending.set(key, fn);
  if (!frame) frame = requestAnimationFrame(flush);
}
// Jobs slower than this are kept in `window.__loomkinSlow` (the last 50): the benchmark
// reads them to say which view a long task came from.
const SLOW_MS = 30;
const slow = (window.__loomkinSlow = []);
function flush() {
  frame = 0;
  const jobs = [...pending.entries()];
  pending.clear();
  for (const [key, job] of jobs) {
    const started = performance.now();
    try { job(); } catch (error) { console.error(error); }
    const took = performance.now() - started;
    if (took > SLOW_MS) { slow.push([key, Math.round(took)]); if (slow.length > 50) slow.shift(); }
  }
}
