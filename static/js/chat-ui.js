// The chat's DOM: message rows (text only through textContent; http/https links
// as real links), send status with retry/discard, typing line, unread badge,
// the moderators' Hide button. chat.js decides; this renders.

const STATUS_LABELS = { sending: "sending…", sent: "sent", failed: "failed" };
/** @type {Record<string, string>} */
export const FAILED_REASONS = {
  bad_request: "this text cannot be sent",
  body_too_long: "too long",
  empty_body: "empty",
  forbidden: "not allowed",
  unavailable: "server unavailable",
};
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/**
 * Split a message body into plain text and links: http and https only, checked
 * by the URL parser; trailing punctuation stays text. No DOM (unit-tested).
 * @param {string} text @returns {{text: string, href?: string}[]}
 */
export function splitLinks(text) {
  /** @type {{text: string, href?: string}[]} */
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let raw = m[0];
    while (/[.,;:!?)\]}]$/.test(raw)) raw = raw.slice(0, -1);
    let href = null;
    try {
      const url = new URL(raw);
      if (url.protocol === "http:" || url.protocol === "https:") href = url.href;
    } catch { /* not a URL: plain text */ }
    if (!href) continue;
    const start = /** @type {number} */ (m.index);
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: raw, href });
    last = start + raw.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

/** @param {HTMLElement} el @param {string} body */
function renderBody(el, body) {
  el.replaceChildren(...splitLinks(body).map((p) => {
    if (!p.href) return document.createTextNode(p.text);
    const a = document.createElement("a");
    a.href = p.href;
    a.textContent = p.text;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }));
}

/** @param {{author: string, body: string, time: string|null, mine: boolean}} m */
export function messageNode({ author, body, time, mine }) {
  const li = document.createElement("li");
  li.className = "chat-message" + (mine ? " chat-mine" : "");
  const who = document.createElement("span");
  who.className = "chat-author";
  who.textContent = author;
  const text = document.createElement("span");
  text.className = "chat-body";
  renderBody(text, body);
  const when = document.createElement("time");
  when.className = "chat-time";
  if (time) {
    when.dateTime = time;
    when.textContent = new Date(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const state = document.createElement("span");
  state.className = "chat-status";
  li.append(who, text, when, state);
  return li;
}

/**
 * @param {HTMLElement} li @param {string} value sending/sent/failed
 * @param {{error?: string|null, onRetry: () => void, onDiscard: () => void}} opts
 */
export function showMessageStatus(li, value, { error, onRetry, onDiscard }) {
  li.dataset.status = value;
  li.querySelector(".chat-status").textContent = STATUS_LABELS[value] ?? "";
  for (const button of li.querySelectorAll(".chat-retry, .chat-discard")) button.remove();
  if (value !== "failed") return;
  if (error) li.querySelector(".chat-status").textContent = `failed (${FAILED_REASONS[error] ?? error})`;
  const retry = document.createElement("button");
  retry.type = "button";
  retry.className = "chat-retry secondary small";
  retry.textContent = "Retry";
  retry.addEventListener("click", onRetry);
  // A message the server refuses stays refused: the user can drop it.
  const discard = document.createElement("button");
  discard.type = "button";
  discard.className = "chat-discard secondary small";
  discard.textContent = "Discard";
  discard.addEventListener("click", onDiscard);
  li.append(retry, discard);
}

/** @param {string[]} names */
export function typingText(names) {
  return names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
    : `${names.join(", ")} are typing…`;
}

/** The unread count on the Chat button (hidden at 0). @param {number} n */
export function showUnread(n) {
  const badge = document.getElementById("chat-unread");
  if (!badge) return;
  badge.textContent = n > 99 ? "99+" : String(n);
  badge.hidden = n === 0;
  badge.setAttribute("aria-label", `${n} unread`);
}

/**
 * Moderators get a Hide button on each message (prepended), others none.
 * @param {HTMLElement} li @param {((seq: number) => void)|null} hide
 */
export function decorateForModeration(li, hide) {
  const button = li.querySelector(".mod-hide");
  const wanted = Boolean(hide) && li.dataset.seq !== undefined && !li.classList.contains("chat-hidden");
  if (wanted && !button) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary mod-hide";
    b.textContent = "Hide";
    const author = li.querySelector(".chat-author")?.textContent;
    b.setAttribute("aria-label", author ? `Hide ${author}'s message for everyone` : "Hide this message for everyone");
    b.addEventListener("click", () => hide?.(Number(li.dataset.seq)));
    li.prepend(b);
  } else if (!wanted && button) {
    button.remove();
  }
}
