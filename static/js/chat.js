// The chat feature of the room page: the outbox (what we send) and the chat
// log (what the room said) against the room socket; chat-ui.js renders.
// init() is called once by main.js; other features use what it returns.
import { Outbox } from "./outbox.js";
import { ChatLog } from "./chat-log.js";
import * as proto from "./protocol.js";
import { decorateForModeration, messageNode, showMessageStatus, showUnread, typingText } from "./chat-ui.js";

const FLUSH_MS = 500;
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 5000;
const SCROLL_LOAD_PX = 40;
// Wake-ups are at most once (a Redis restart drops the room's group until the
// socket reconnects): a quiet client still asks for anything newer this often.
const RESYNC_MS = 10000;

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

/**
 * @typedef {{helloExtras: () => object, outbox: Outbox, log: ChatLog,
 *            setVisible: (visible: boolean) => void,
 *            setModeration: (hide: ((seq: number) => void)|null) => void}} ChatFeature
 */

/**
 * @param {{socket: import("./socket.js").RoomSocket, root: HTMLElement}} ctx
 * @returns {ChatFeature|null}
 */
export function init({ socket, root }) {
  const card = root.querySelector("#chat");
  if (!card) return null;
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
  let visible = true;
  let unread = 0;
  /** @type {((seq: number) => void)|null} */
  let hide = null;

  /** @param {HTMLElement} li @param {string} value */
  function status(li, value) {
    showMessageStatus(li, value, {
      error: outbox.get(li.dataset.clientId)?.error,
      onRetry: () => {
        const item = outbox.retry(li.dataset.clientId);
        if (item) { status(li, "sending"); flush(); }
      },
      onDiscard: () => {
        outbox.discard(li.dataset.clientId);
        byClientId.delete(li.dataset.clientId);
        li.remove();
      },
    });
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
    decorateForModeration(li, hide);
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
      if (!visible && m.author_id !== memberId && !m.hidden) unread += 1;
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
    showUnread(unread);
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
    syncInFlight = socket.send(proto.chatSync(log.lastSeq));
  }

  function requestHistory(beforeSeq) {
    if (historyInFlight) return;
    historyInFlight = socket.send(proto.chatHistory(beforeSeq));
    olderNote.hidden = !(historyInFlight && beforeSeq !== null);
  }

  function flush() {
    for (const item of outbox.due()) {
      const sent = socket.send(proto.chatSend(item.client_id, item.body));
      if (!sent) break;
      outbox.markSent(item.client_id);
    }
  }

  function apply({ released, gap }) {
    appendLogged(released);
    if (gap) requestSync();
  }

  socket.on(proto.IN.welcome, () => {
    syncInFlight = false;
    historyInFlight = false;
    outbox.reconnected();
    // Resume: everything after the last seq we hold; or, first time, the newest page.
    if (log.lastSeq === null) requestHistory(null);
    else requestSync();
    flush();
  });
  socket.on(proto.IN.chatPage, (f) => {
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
  socket.on(proto.IN.chatBatch, (f) => {
    syncInFlight = false;
    apply(log.receive(f.messages));
    if (f.has_more) requestSync();
  });
  socket.on(proto.IN.chatMessage, (f) => apply(log.receive([/** @type {any} */ (f)])));
  socket.on(proto.IN.chatMessages, (f) => apply(log.receive(f.messages)));
  socket.on(proto.IN.chatAck, (f) => {
    const item = outbox.ack(f.client_id, f.seq);
    const li = byClientId.get(f.client_id);
    if (item && li) status(li, "sent");
    // Acknowledged but not in our log yet: its wake-up may be lost; fetch it.
    if (log.behind(f.seq)) requestSync();
  });
  socket.on(proto.IN.chatHidden, (f) => {
    const li = bySeq.get(f.seq);
    if (!li) return;
    const replacement = renderLogged({ seq: f.seq, hidden: true });
    li.replaceWith(replacement);
  });
  socket.on(proto.IN.chatTyping, (f) => showTyping(f.member_id, f.display_name));
  socket.on(proto.IN.error, (f) => {
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
    typingLine.textContent = typingText([...typing.values()].map((t) => t.name));
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
      if (socket.send(proto.chatTyping())) lastTypingSent = now;
    }
  });
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < SCROLL_LOAD_PX && log.hasOlder && log.oldestSeq !== null) {
      requestHistory(log.oldestSeq);
    }
  });

  // Unsent messages from before a reload: shown at once, sent when the socket is up.
  for (const item of outbox.list()) renderOutboxItem(item);

  return {
    helloExtras: () => ({}),
    outbox,
    log,
    /** The chat panel opened (unread count back to 0) or closed. */
    setVisible(v) {
      visible = v;
      if (v) { unread = 0; showUnread(0); scroller.scrollTop = scroller.scrollHeight; }
    },
    /** Moderators hide messages (moderation.js passes how); null for everyone else. */
    setModeration(fn) {
      hide = fn;
      for (const li of list.querySelectorAll("li.chat-message[data-seq]")) decorateForModeration(/** @type {HTMLElement} */ (li), hide);
    },
  };
}
