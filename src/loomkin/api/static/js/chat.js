// The chat with the Concierge: stays where the reader is (no jump to the bottom while they
// read back), and its history is searched a window of the log at a time.
"use strict";

import { $, api, el, later } from "./util.js";

const CHAT_KINDS = "user_message_posted,assistant_replied";
let base = () => "";

export function setupChat(sessionBase) {
  base = sessionBase;
}

const chatBox = $("chat");
let chatStick = true;
const chatSeen = new Set();
chatBox.addEventListener("scroll", () => {
  chatStick = chatBox.scrollHeight - chatBox.scrollTop - chatBox.clientHeight < 24;
  if (chatStick) $("chat-newer").hidden = true;
}, { passive: true });
$("chat-newer").addEventListener("click", () => { chatBox.scrollTop = chatBox.scrollHeight; });

// Earlier messages are searched for a window of the log at a time (the chat may be far back
// in a long session): never the whole log at once, and never before the page is usable.
let chatBefore = 0;
export async function loadChat(before) {
  $("chat-older").disabled = true;
  try {
    const page = await api("GET", `${base()}/feed/tail?limit=100&scan=5000&kinds=${CHAT_KINDS}&before=${before}`, undefined, { quiet: true });
    chatBefore = page.first_position;
    $("chat-older").hidden = !page.more;
    addChat(page.rows, true);
  } catch (_) { /* the button stays to try again */ } finally {
    $("chat-older").disabled = false;
  }
}
$("chat-older").addEventListener("click", () => loadChat(chatBefore));

export function addChat(rows, older = false) {
  const fresh = rows.filter((r) => !chatSeen.has(r.position));
  if (!fresh.length) return;
  for (const r of fresh) chatSeen.add(r.position);
  later(older ? "chat-older" : "chat", () => {
    const items = fresh.map((row) => {
      const user = row.type === "chat_user";
      return el("li", { class: user ? "user" : "reply", "data-position": row.position }, el("b", {}, user ? "You" : row.actor), row.payload.text);
    });
    if (older) {
      const keep = chatBox.scrollHeight - chatBox.scrollTop;
      chatBox.prepend(...items);
      chatBox.scrollTop = chatStick ? chatBox.scrollHeight : chatBox.scrollHeight - keep;
      return;
    }
    chatBox.append(...items);
    while (chatBox.childElementCount > 400) chatBox.firstElementChild.remove();
    // One scroll per frame, and only when the reader is at the bottom: reading stays put.
    if (chatStick) chatBox.scrollTop = chatBox.scrollHeight; else $("chat-newer").hidden = false;
  });
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  await api("POST", `${base()}/messages`, { text });
  input.value = "";
  chatStick = true;
});
