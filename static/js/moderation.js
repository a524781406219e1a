// The moderation feature of the room page. init() is called once by main.js.
// The server decides every permission; this only shows what the role allows.
import { canActOn, describeAction, isModerator, noticeFor } from "./moderation-logic.js";

/**
 * @typedef {{knock_id: string, member_id: number, display_name: string, role: string}} Knock
 */

/** @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence, root: HTMLElement}} ctx */
export function init(ctx) {
  const { socket, presence } = ctx;
  const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const panel = $("moderation");
  if (!panel) return { helloExtras: () => ({}) };
  const input = (id) => /** @type {HTMLInputElement} */ ($(id));
  let role = "";
  /** @type {string|null} */ let password = null;
  /** @type {Map<string, Knock>} */ const knocks = new Map();
  const access = {
    locked: panel.dataset.locked === "true",
    lobby_enabled: panel.dataset.lobby === "true",
    password_required: panel.dataset.password === "true",
  };

  function notice(n) {
    const box = $("mod-notice");
    if (!n) { box.hidden = true; box.textContent = ""; return; }
    box.textContent = n.text;
    box.dataset.tone = n.tone;
    box.hidden = false;
  }

  function send(frame) {
    socket.send({ ...frame, reason: input("mod-reason").value.trim() || undefined });
  }

  function accessWords() {
    return [access.locked ? "locked" : "open", access.lobby_enabled ? "lobby on" : null,
      access.password_required ? "password required" : null].filter(Boolean);
  }

  function renderAccess() {
    input("mod-lock").checked = access.locked;
    input("mod-lobby").checked = access.lobby_enabled;
    const parts = accessWords();
    $("mod-access").textContent = `Room: ${parts.join(", ")}`;
    // Everyone sees the entry rules when any is on.
    const restricted = access.locked || access.lobby_enabled || access.password_required;
    $("mod-public-access").textContent = restricted ? `This room is ${parts.join(", ")}.` : "";
    updateFeed();
  }

  function updateFeed() {
    $("mod-feed").hidden = !$("mod-public-access").textContent && !$("mod-log").children.length;
  }

  function renderPeople() {
    const list = $("mod-people");
    const selfId = presence.selfId;
    const seen = new Set();
    list.replaceChildren(...presence.list().filter((p) => {
      // One row per member (several tabs are one person).
      if (p.peer_id === selfId || seen.has(p.member_id)) return false;
      seen.add(p.member_id);
      return true;
    }).map((p) => {
      const li = document.createElement("li");
      li.className = "mod-person";
      li.dataset.memberId = String(p.member_id);
      const name = document.createElement("span");
      name.className = "mod-name";
      name.textContent = `${p.display_name} (${p.role})${p.audio ? "" : " · muted"}`;
      li.append(name);
      if (canActOn(role, p.role)) {
        const button = (label, cls, frame) => {
          const b = document.createElement("button");
          b.type = "button";
          b.className = `secondary ${cls}`;
          b.textContent = label;
          b.addEventListener("click", () => send({ ...frame, member_id: p.member_id }));
          return b;
        };
        li.append(
          button("Ask to mute", "mod-ask-mute", { type: "mod.mute", request: true }),
          button("Mute", "mod-mute", { type: "mod.mute" }),
          button("Remove", "mod-kick", { type: "mod.kick" }),
          button("Ban", "mod-ban", { type: "mod.ban" }),
        );
        if (role === "owner" && p.role !== "guest") {
          const promote = p.role === "moderator" ? "participant" : "moderator";
          li.append(button(promote === "moderator" ? "Make moderator" : "Remove moderator", "mod-role",
            { type: "mod.set_role", role: promote }));
        }
      }
      return li;
    }));
  }

  function renderKnocks() {
    $("mod-lobby-box").hidden = knocks.size === 0;
    $("mod-lobby-list").replaceChildren(...[...knocks.values()].map((k) => {
      const li = document.createElement("li");
      li.className = "mod-person mod-knock";
      li.dataset.knockId = k.knock_id;
      const name = document.createElement("span");
      name.className = "mod-name";
      name.textContent = k.display_name;
      const admit = document.createElement("button");
      admit.type = "button";
      admit.className = "mod-admit";
      admit.textContent = "Admit";
      admit.addEventListener("click", () => socket.send({ type: "mod.admit", knock_id: k.knock_id }));
      const reject = document.createElement("button");
      reject.type = "button";
      reject.className = "secondary mod-reject";
      reject.textContent = "Reject";
      reject.addEventListener("click", () => send({ type: "mod.reject", knock_id: k.knock_id }));
      li.append(name, admit, reject);
      return li;
    }));
  }

  function setRole(next) {
    role = next;
    panel.hidden = !isModerator(role);
    if (!isModerator(role)) { knocks.clear(); renderKnocks(); }
    renderAccess();
    renderPeople();
    decorateChat();
  }

  function log(text) {
    const li = document.createElement("li");
    li.textContent = text;
    $("mod-log").prepend(li);
    updateFeed();
  }

  // Moderators get a Hide button on each chat message the chat feature renders.
  const chatList = document.getElementById("chat-messages");
  function decorateChat() {
    if (!chatList) return;
    for (const li of chatList.querySelectorAll("li.chat-message[data-seq]")) {
      if (!(li instanceof HTMLElement)) continue;
      const button = li.querySelector(".mod-hide");
      const wanted = isModerator(role) && !li.classList.contains("chat-hidden");
      if (wanted && !button) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "secondary mod-hide";
        b.textContent = "Hide";
        b.title = "Hide this message for everyone";
        b.addEventListener("click", () => socket.send({ type: "mod.hide_message", seq: Number(li.dataset.seq) }));
        li.prepend(b);
      } else if (!wanted && button) {
        button.remove();
      }
    }
  }
  if (chatList) new MutationObserver(decorateChat).observe(chatList, { childList: true });

  function muteSelf() {
    // The call feature owns the microphone; its toggle keeps its UI in step.
    // @ts-ignore - set by call.js
    if (window.huddleCall?.state?.audio) document.getElementById("toggle-mic")?.click();
  }

  socket.on("welcome", (f) => { notice(null); setRole(f.member.role); if (isModerator(role)) socket.send({ type: "mod.lobby_list" }); });
  socket.on("member.you", (f) => setRole(f.role));
  for (const type of ["presence.join", "presence.update", "presence.leave"]) socket.on(type, () => queueMicrotask(renderPeople));
  socket.on("room.access", (f) => { Object.assign(access, f); renderAccess(); if (f.by) log(`${f.by} set the room to: ${accessWords().join(", ")}`); });
  socket.on("mod.action", (f) => log(describeAction(f)));
  socket.on("lobby.knock", (f) => { knocks.set(f.knock_id, /** @type {Knock} */ (/** @type {unknown} */ (f))); renderKnocks(); });
  socket.on("lobby.list", (f) => { knocks.clear(); for (const k of f.knocks) knocks.set(k.knock_id, k); renderKnocks(); });
  socket.on("lobby.resolved", (f) => { knocks.delete(f.knock_id); renderKnocks(); });
  socket.on("mod.muted", (f) => { muteSelf(); notice(noticeFor(f)); });
  socket.on("mod.mute_all", (f) => { if (!isModerator(role)) { muteSelf(); notice(noticeFor(f)); } });
  socket.on("*", (f) => {
    if (["mod.kicked", "mod.banned", "session.ended", "lobby.waiting", "mod.mute_request", "error"].includes(f.type)) {
      const n = noticeFor(f);
      if (n) notice(n);
      if (f.type === "error" && f.code === "password_required") askPassword();
    }
  });

  function askPassword() {
    // Reconnecting with the same (missing or wrong) password cannot help.
    socket.stop();
    const form = $("room-password-prompt");
    form.hidden = false;
    input("room-password-input").focus();
  }
  $("room-password-prompt").addEventListener("submit", (e) => {
    e.preventDefault();
    password = input("room-password-input").value;
    $("room-password-prompt").hidden = true;
    notice(null);
    socket.attempt = 0;
    socket.start();
  });

  input("mod-lock").addEventListener("change", () => socket.send({ type: "mod.lock", locked: input("mod-lock").checked }));
  input("mod-lobby").addEventListener("change", () => socket.send({ type: "mod.lobby", enabled: input("mod-lobby").checked }));
  $("mod-mute-all").addEventListener("click", () => socket.send({ type: "mod.mute_all" }));
  $("mod-password-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = input("mod-password").value;
    if (value.length >= 4) socket.send({ type: "mod.password", password: value });
    input("mod-password").value = "";
  });
  $("mod-password-clear").addEventListener("click", () => socket.send({ type: "mod.password", password: null }));
  renderAccess();

  return { helloExtras: () => (password ? { password } : {}) };
}
