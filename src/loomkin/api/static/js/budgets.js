// The Budgets panel's form: set new limits (session, each team, each agent; USD and tokens)
// through POST /budgets, which journals them and resumes the agents the new limits free.
// A blank field leaves that limit as it is; "none" removes it. Bad input is refused here
// with a toast naming the field, and the server checks again (its errors toast the same way).
"use strict";

import { $, api, el, toast } from "./util.js";

const SCOPES = [["session", "Session"], ["team", "Each team"], ["agent", "Each agent"]];
const UNITS = [["usd", "USD"], ["tokens", "tokens"]];

/** Build the form once (re-rendering the bars never touches what the user is typing). */
export function setupBudgetForm({ base, refresh }) {
  const form = $("budget-form");
  const cells = [];
  for (const [scope, label] of SCOPES) {
    cells.push(el("span", { class: "scope" }, label));
    for (const [unit, unitLabel] of UNITS) {
      const key = `${scope}_${unit}`;
      cells.push(el("input", {
        name: key, "aria-label": `${label} limit in ${unitLabel}`, placeholder: unitLabel,
        inputmode: unit === "usd" ? "decimal" : "numeric", autocomplete: "off",
      }));
    }
  }
  form.replaceChildren(
    el("div", { class: "limits" }, el("span"), el("span", { class: "muted" }, "USD"), el("span", { class: "muted" }, "tokens"), ...cells),
    el("div", { class: "actions" },
      el("button", { type: "submit", class: "primary", id: "budget-set" }, "Set limits & resume"),
      el("span", { class: "muted hint" }, "blank: unchanged · none: no limit")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = readLimits(form);
    if (body === null) return;
    const button = $("budget-set");
    button.disabled = true;
    try {
      const out = await api("POST", `${base()}/budgets`, body);
      for (const input of form.querySelectorAll("input")) input.value = "";
      const resumed = out.resumed.length ? ` · resumed ${out.resumed.join(", ")}` : "";
      const still = out.still_paused.length ? ` · still over budget: ${out.still_paused.join(", ")}` : "";
      toast(`Limits set${resumed}${still}`, out.still_paused.length ? "warn" : "info");
    } catch (_) {
      /* api() has shown the error as a toast */
    } finally {
      button.disabled = false;
      refresh();
    }
  });
}

/** The filled fields as the endpoint's body, or null (after a toast) when one is not a limit. */
function readLimits(form) {
  const body = {};
  for (const input of form.querySelectorAll("input")) {
    const text = input.value.trim().toLowerCase();
    if (!text) continue;
    if (text === "none") { body[input.name] = null; continue; }
    const value = Number(text);
    const whole = input.name.endsWith("_tokens");
    if (!Number.isFinite(value) || value < 0 || (whole && !Number.isInteger(value))) {
      toast(`${input.getAttribute("aria-label")}: "${input.value}" is not ${whole ? "a whole number" : "a number"} ≥ 0 (or none)`, "error");
      input.focus();
      return null;
    }
    body[input.name] = value;
  }
  if (!Object.keys(body).length) {
    toast("Fill in at least one limit", "error");
    return null;
  }
  return body;
}

/** Enable the form only while the page can act on the session. */
export function enableBudgetForm(live) {
  for (const control of $("budget-form").querySelectorAll("input, button")) control.disabled = !live;
}

/**
 * Bring the form into view at the limit a pause names (the prompt dock's "Raise a limit"):
 * "budget exceeded: team budget of 500 tokens reached ..." focuses the team's tokens field.
 */
export function focusBudgetForm(reason = "") {
  const match = /(session|team|agent) budget of (\$)?/.exec(reason);
  const name = match ? `${match[1]}_${match[2] ? "usd" : "tokens"}` : "session_usd";
  const field = $("budget-form").querySelector(`input[name="${name}"]`);
  field.scrollIntoView({ block: "center" });
  field.focus();
}
