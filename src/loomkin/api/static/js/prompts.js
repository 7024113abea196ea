// Permission prompts, docked above the panels (they never cover them), each with what it would
// do: a diff for a file write or edit, the command for `shell`, and what "Allow always" would
// cover. Keys o / a / d answer the first prompt (as in the terminal). The tab's title counts
// what waits on you, and an opt-in browser notification says so when the tab is hidden.
// Questions agents ask the user are docked here too, each with an answer box (Ctrl+Enter sends).
"use strict";

import { $, api, el, short, toast } from "./util.js";
import { focusBudgetForm } from "./budgets.js";
import { diffView } from "./panels.js";

let waitingBefore = 0;
const BASE_TITLE = "Loomkin";

/** Agents a budget paused: they wait for the user to raise it (then Resume). */
export const budgetPaused = (detail) => detail.agents.filter((a) => a.status === "paused" && a.status_reason.startsWith("budget"));

export function renderPrompts(detail, { base, live, refresh }) {
  const dock = $("prompts");
  const list = $("prompt-list");
  const wanted = new Set(detail.permissions.map((p) => p.request_id));
  for (const child of [...list.querySelectorAll(".prompt")]) if (!wanted.has(child.dataset.requestId)) child.remove();
  const shown = new Set([...list.querySelectorAll(".prompt")].map((c) => c.dataset.requestId));
  for (const prompt of detail.permissions) if (!shown.has(prompt.request_id)) list.append(promptCard(prompt, base, refresh));
  for (const button of list.querySelectorAll(".prompt button")) button.disabled = !live;
  const budgets = budgetPaused(detail);
  for (const old of list.querySelectorAll(".budget-wait")) old.remove();
  for (const agent of budgets) {
    list.append(el("section", { class: "budget-wait", "data-agent": agent.name },
      el("h3", {}, el("b", {}, agent.name), " is paused: over budget"),
      el("p", {}, agent.status_reason),
      el("p", { class: "actions" },
        el("button", { type: "button", class: "raise", disabled: !live, onclick: () => focusBudgetForm(agent.status_reason) }, "Raise a limit"),
        el("span", { class: "muted" }, " in Budgets: it resumes once under its limits"))));
  }
  renderQuestions(list, detail.questions || [], { base, live, refresh });
  const waiting = detail.permissions.length + budgets.length + (detail.questions || []).length;
  dock.hidden = waiting === 0;
  $("prompt-count").textContent = String(waiting);
}

/** Cards of the questions agents asked the user; a card being typed in is never rebuilt. */
function renderQuestions(list, questions, { base, live, refresh }) {
  const wanted = new Set(questions.map((q) => q.question_id));
  for (const card of [...list.querySelectorAll(".question")]) if (!wanted.has(card.dataset.questionId)) card.remove();
  const shown = new Set([...list.querySelectorAll(".question")].map((c) => c.dataset.questionId));
  for (const question of questions) if (!shown.has(question.question_id)) list.append(questionCard(question, base, refresh));
  for (const button of list.querySelectorAll(".question button")) button.disabled = !live;
}

function questionCard(question, base, refresh) {
  const card = el("section", { class: "question", "data-question-id": question.question_id, role: "group", "aria-label": `Question from ${question.agent}` });
  const box = el("textarea", { rows: 3, maxlength: 20000, placeholder: "Your answer", "aria-label": `Answer to ${question.agent}` });
  const deadline = Date.now() + question.seconds_left * 1000;
  const send = async (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text) { toast("Write an answer first", "error"); return; }
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    try {
      await api("POST", `${base()}/questions/${encodeURIComponent(question.question_id)}/answer`, { text }, { quiet: true });
      card.remove();
      refresh();
    } catch (error) {
      if (error.status === 404 || error.status === 409) {
        // Answered meanwhile (another tab, the CLI) or past its deadline: the agent was told.
        card.remove();
        toast(`${question.agent}'s question: ${error.message}`);
        refresh();
        return;
      }
      toast(error.message, "error");
      for (const b of card.querySelectorAll("button")) b.disabled = false;
    }
  };
  box.addEventListener("keydown", (event) => { if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send(event); });
  card.append(
    el("h3", {}, el("b", {}, question.agent), ` (team ${question.team}) asks you`),
    el("p", { class: "text" }, question.question),
    el("form", { onsubmit: send }, box,
      el("div", { class: "actions" },
        el("button", { type: "submit", class: "primary" }, "Answer"),
        el("span", { class: "muted left" }, `answer by ${new Date(deadline).toLocaleTimeString()}`))),
  );
  return card;
}

/** The tab title's badge and, when allowed and the tab is hidden, a notification. */
export function announce(detail) {
  const budgets = budgetPaused(detail);
  const questions = detail.questions || [];
  const waiting = detail.permissions.length + budgets.length + questions.length;
  document.title = waiting ? `(${waiting}) ${BASE_TITLE}` : BASE_TITLE;
  if (waiting > waitingBefore && document.hidden && notificationsOn()) {
    const p = detail.permissions[detail.permissions.length - 1];
    const q = questions[questions.length - 1];
    const body = p ? `${p.agent} asks to ${p.tool} ${short(p.target, 80)}`
      : q ? `${q.agent} asks: ${short(q.question, 80)}` : `${budgets[0].name} is paused: over budget`;
    try {
      new Notification(`Loomkin: ${waiting} waiting for you`, { body, tag: "loomkin-waiting" });
    } catch (_) { /* notifications unavailable in this context */ }
  }
  waitingBefore = waiting;
}

function notificationsOn() {
  return "Notification" in window && Notification.permission === "granted" && localStorage.getItem("loomkin-notify") === "on";
}

export function setupNotifications() {
  const button = $("notify");
  const show = () => {
    const on = notificationsOn();
    button.textContent = on ? "Notifications on" : "Notify me";
    button.setAttribute("aria-pressed", String(on));
  };
  if (!("Notification" in window)) { button.hidden = true; return; }
  button.addEventListener("click", async () => {
    if (notificationsOn()) localStorage.setItem("loomkin-notify", "off");
    else if ((await Notification.requestPermission()) === "granted") localStorage.setItem("loomkin-notify", "on");
    show();
  });
  show();
}

function promptCard(prompt, base, refresh) {
  const card = el("section", { class: "prompt", "data-request-id": prompt.request_id, role: "group", "aria-label": `Permission for ${prompt.agent}`, tabindex: 0 });
  const answer = (decision) => async () => {
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    try {
      await api("POST", `${base()}/permissions/${encodeURIComponent(prompt.request_id)}`, { decision }, { quiet: true });
      card.remove();
      refresh();
    } catch (error) {
      if (error.status === 404) {
        // Answered meanwhile (an "always" given to another prompt covered it, or another tab).
        card.remove();
        toast(`${prompt.agent}'s ${prompt.tool} prompt was already answered`);
        refresh();
        return;
      }
      toast(error.message, "error");
      for (const b of card.querySelectorAll("button")) b.disabled = false;
    }
  };
  let what;
  if (prompt.diff) what = diffView(prompt.diff.split("\n").filter((l, i, all) => l || i < all.length - 1));
  else if (prompt.command) what = el("pre", { class: "command" }, `$ ${prompt.command}`);
  else what = el("pre", { class: "args" }, short(JSON.stringify(prompt.arguments, null, 2), 2000));
  card.append(
    el("h3", {}, el("b", {}, prompt.agent), " asks to run ", el("code", { class: "tool" }, prompt.tool)),
    el("div", { class: "target" }, prompt.target || "—"),
    what,
    el("p", { class: "always" }, "Allow always covers: ", el("span", { class: "scope" }, prompt.always || `${prompt.tool} on ${prompt.target || "every target"}`)),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "danger", onclick: answer("deny"), "aria-keyshortcuts": "d" }, "Deny"),
      el("button", { type: "button", onclick: answer("allow_once"), "aria-keyshortcuts": "o" }, "Allow once"),
      el("button", { type: "button", class: "primary", onclick: answer("allow_always"), "aria-keyshortcuts": "a" }, "Allow always"),
      el("span", { class: "keys muted" }, "keys: o once · a always · d deny")),
  );
  return card;
}

/** o / a / d answer the focused prompt, else the first one (never while typing). */
export function setupShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], dialog")) return;
    const label = { o: "Allow once", a: "Allow always", d: "Deny" }[event.key];
    if (!label) return;
    const prompt = (target.closest && target.closest(".prompt")) || document.querySelector("#prompt-list .prompt");
    if (!prompt) return;
    const button = [...prompt.querySelectorAll("button")].find((b) => b.textContent === label);
    if (button && !button.disabled) { event.preventDefault(); button.click(); }
  });
}
