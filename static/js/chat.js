// The chat feature of the room page: DOM glue around the outbox (what we
// send) and the chat log (what the room said). init() is called once by main.js.
// Text goes into the page only through textContent.
import { Outbox } from "./outbox.js";
import { ChatLog } from "./chat-log.js";

const FLUSH_MS = 500;
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 5000;
const SCROLL_LOAD_PX = 40;
// Wake-ups are at most once (a Redis restart drops the room's group until the
// socket reconnects): a quiet client still asks for anything newer this often.
const RESYNC_MS = 10000;
const STATUS_LABELS = { sending: "sending…", sent: "sent", failed: "failed" };
/** @type {Record<string, string>} */
const FAILED_REASONS = {
  bad_request: "this text cannot be sent",
  body_too_long: "too long",
  empty_body: "empty",
  forbidden: "not allowed",
  unavailable: "server unavailable",
};

/** localStorage, or null where it is blocked (private modes, sandboxed frames). */
function browserStorage() {
  try {
    const s = globalThis.localStorage;
    s.setItem("huddle.probe", "1");
    s.removeItem("huddle.probe");
    return s;
  } catch {
    return null;
  }
}

/** @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence, root: HTMLElement}} ctx */
export function init({ socket, root }) {
  const card = root.querySelector("#chat");
  if (!card) return { helloExtras: () => ({}) };
  const memberId = Number(root.dataset.memberId);
  const outbox = new Outbox({
    storage: browserStorage(),
    key: `huddle.outbox.${root.dataset.slug}.${memberId}`,
  });
  const log = new ChatLog();
  const scroller = card.querySelector("#chat-scroll");
  const list = card.querySelector("#chat-messages");
  const pendingList = card.querySelector("#chat-outbox");
  const olderNote = /** @type {HTMLElement} */ (card.querySelector("#chat-older"));
  const typingLine = card.querySelector("#chat-typing");
  const form = card.querySelector("#chat-form");
  const input = /** @type {HTMLTextAreaElement} */ (card.querySelector("#chat-input"));
  /** @type {Map<number, HTMLElement>} */
  const bySeq = new Map();
  /** @type {Map<string, HTMLElement>} */
  const byClientId = new Map();
  /** @type {Map<number, {name: string, timer: any}>} */
  const typing = new Map();
  let syncInFlight = false;
  let historyInFlight = false;
  let lastTypingSent = 0;

  // --- rendering --------------------------------------------------------
  function status(li, value) {
    li.dataset.status = value;
    li.querySelector(".chat-status").textContent = STATUS_LABELS[value] ?? "";
    for (const button of li.querySelectorAll(".chat-retry, .chat-discard")) button.remove();
    if (value === "failed") {
      const reason = outbox.get(li.dataset.clientId)?.error;
      if (reason) li.querySelector(".chat-status").textContent = `failed (${FAILED_REASONS[reason] ?? reason})`;
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "chat-retry secondary small";
      retry.textContent = "Retry";
      retry.addEventListener("click", () => {
        const item = outbox.retry(li.dataset.clientId);
        if (item) { status(li, "sending"); flush(); }
      });
      // A message the server refuses stays refused: the user can drop it.
      const discard = document.createElement("button");
      discard.type = "button";
      discard.className = "chat-discard secondary small";
      discard.textContent = "Discard";
      discard.addEventListener("click", () => {
        outbox.discard(li.dataset.clientId);
        byClientId.delete(li.dataset.clientId);
        li.remove();
      });
      li.append(retry, discard);
    }
  }

  function messageNode({ author, body, time, mine }) {
    const li = document.createElement("li");
    li.className = "chat-message" + (mine ? " chat-mine" : "");
    const who = document.createElement("span");
    who.className = "chat-author";
    who.textContent = author;
    const text = document.createElement("span");
    text.className = "chat-body";
    text.textContent = body;
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

  /** @param {import("./chat-log.js").ChatMessage} m */
  function renderLogged(m) {
    const mine = m.author_id === memberId;
    const li = m.hidden
      ? messageNode({ author: "", body: "message hidden by a moderator", time: null, mine: false })
      : messageNode({ author: m.author_name ?? "", body: m.body ?? "", time: m.created_at, mine });
    li.dataset.seq = String(m.seq);
    if (m.hidden) li.classList.add("chat-hidden");
    if (mine && m.client_id) {
      li.dataset.clientId = m.client_id;
      status(li, "sent");
    }
    bySeq.set(m.seq, li);
    return li;
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
  }

  function appendLogged(messages) {
    if (!messages.length) return;
    const stick = nearBottom();
    for (const m of messages) {
      list.append(renderLogged(m));
      if (m.author_id === memberId && m.client_id && outbox.get(m.client_id)) {
        // Our own message reached the log: it is shown there, once.
        outbox.ack(m.client_id, m.seq);
        outbox.forget(m.client_id);
        byClientId.get(m.client_id)?.remove();
        byClientId.delete(m.client_id);
      }
      if (m.author_id !== undefined) clearTyping(m.author_id);
    }
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  function prependLogged(messages) {
    if (!messages.length) return;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    list.prepend(...messages.map(renderLogged));
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  }

  function renderOutboxItem(item) {
    const li = messageNode({ author: "you", body: item.body, time: null, mine: true });
    li.dataset.clientId = item.client_id;
    status(li, item.status);
    byClientId.set(item.client_id, li);
    pendingList.append(li);
    scroller.scrollTop = scroller.scrollHeight;
  }

  // --- talking to the server ----------------------------------------------
  function requestSync() {
    if (syncInFlight || log.lastSeq === null) return;
    syncInFlight = socket.send({ type: "chat.sync", after_seq: log.lastSeq });
  }

  function requestHistory(beforeSeq) {
    if (historyInFlight) return;
    const frame = beforeSeq === null ? { type: "chat.history" } : { type: "chat.history", before_seq: beforeSeq };
    historyInFlight = socket.send(frame);
    olderNote.hidden = !(historyInFlight && beforeSeq !== null);
  }

  function flush() {
    for (const item of outbox.due()) {
      const sent = socket.send({ type: "chat.send", client_id: item.client_id, body: item.body, ref: item.client_id });
      if (!sent) break;
      outbox.markSent(item.client_id);
    }
  }

  function apply({ released, gap }) {
    appendLogged(released);
    if (gap) requestSync();
  }

  socket.on("welcome", () => {
    syncInFlight = false;
    historyInFlight = false;
    outbox.reconnected();
    // Resume: everything after the last seq we hold; or, first time, the newest page.
    if (log.lastSeq === null) requestHistory(null);
    else requestSync();
    flush();
  });
  socket.on("chat.page", (f) => {
    historyInFlight = false;
    olderNote.hidden = true;
    if (f.before_seq === null || f.before_seq === undefined) {
      if (log.lastSeq !== null) return; // a stale first page after a reconnect
      appendLogged(log.start(f.messages, f.has_more));
      scroller.scrollTop = scroller.scrollHeight;
      requestSync(); // whatever committed while the page was read
    } else {
      prependLogged(log.older(f.messages, f.has_more));
    }
  });
  socket.on("chat.batch", (f) => {
    syncInFlight = false;
    apply(log.receive(f.messages));
    if (f.has_more) requestSync();
  });
  socket.on("chat.message", (f) => apply(log.receive([/** @type {any} */ (f)])));
  socket.on("chat.messages", (f) => apply(log.receive(f.messages)));
  socket.on("chat.ack", (f) => {
    const item = outbox.ack(f.client_id, f.seq);
    const li = byClientId.get(f.client_id);
    if (item && li) status(li, "sent");
    // Acknowledged but not in our log yet: its wake-up may be lost; fetch it.
    if (log.behind(f.seq)) requestSync();
  });
  socket.on("chat.hidden", (f) => {
    const li = bySeq.get(f.seq);
    if (!li) return;
    const replacement = renderLogged({ seq: f.seq, hidden: true });
    li.replaceWith(replacement);
  });
  socket.on("chat.typing", (f) => showTyping(f.member_id, f.display_name));
  socket.on("error", (f) => {
    if (typeof f.ref === "string" && outbox.get(f.ref)) {
      const item = outbox.error(f.ref, f.code, f.retry_after ?? 0);
      const li = byClientId.get(f.ref);
      if (item && li) status(li, item.status);
    } else if (f.code === "bad_seq") {
      syncInFlight = false;
    }
  });
  setInterval(flush, FLUSH_MS);
  setInterval(() => { syncInFlight = false; requestSync(); }, RESYNC_MS);

  // --- typing -------------------------------------------------------------
  function renderTyping() {
    const names = [...typing.values()].map((t) => t.name);
    typingLine.textContent = names.length === 0 ? ""
      : names.length === 1 ? `${names[0]} is typing…`
      : `${names.join(", ")} are typing…`;
  }
  function showTyping(member, name) {
    if (member === memberId) return;
    clearTimeout(typing.get(member)?.timer);
    typing.set(member, { name: String(name ?? ""), timer: setTimeout(() => clearTyping(member), TYPING_SHOW_MS) });
    renderTyping();
  }
  function clearTyping(member) {
    const t = typing.get(member);
    if (!t) return;
    clearTimeout(t.timer);
    typing.delete(member);
    renderTyping();
  }

  // --- composer and scrolling ---------------------------------------------
  function submit() {
    const body = input.value.trim();
    if (!body) return;
    renderOutboxItem(outbox.add(body));
    input.value = "";
    flush();
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (input.value && now - lastTypingSent > TYPING_SEND_MS) {
      if (socket.send({ type: "chat.typing" })) lastTypingSent = now;
    }
  });
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < SCROLL_LOAD_PX && log.hasOlder && log.oldestSeq !== null) {
      requestHistory(log.oldestSeq);
    }
  });

  // Unsent messages from before a reload: shown at once, sent when the socket is up.
  for (const item of outbox.list()) renderOutboxItem(item);

  return { helloExtras: () => ({}), outbox, log };
}
