// The moderation feature of the room page. init() is called once by main.js.
// The server decides every permission; this only shows what the role allows.
// It acts on the call and the chat through what those features return, never
// through their DOM or window.
import { canActOn, describeAction, isModerator, noticeFor } from "./moderation-logic.js";
import * as proto from "./protocol.js";
import * as ui from "./moderation-ui.js";

const { IN } = proto;

/**
 * @typedef {{knock_id: string, member_id: number, display_name: string, role: string}} Knock
 */

/**
 * @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence,
 *          call: import("./call.js").CallFeature|null, chat: import("./chat.js").ChatFeature|null}} ctx
 */
export function init({ socket, presence, call, chat }) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const panel = $("moderation");
  if (!panel) return null;
  const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id));
  let role = "";
  /** @type {string|null} */ let password = null;
  /** @type {Map<string, Knock>} */ const knocks = new Map();
  const access = {
    locked: panel.dataset.locked === "true",
    lobby_enabled: panel.dataset.lobby === "true",
    password_required: panel.dataset.password === "true",
  };

  const reason = () => input("mod-reason").value.trim() || undefined;

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
    const selfId = presence.selfId;
    const seen = new Set();
    const people = presence.list().filter((p) => {
      // One row per member (several tabs are one person).
      if (p.peer_id === selfId || seen.has(p.member_id)) return false;
      seen.add(p.member_id);
      return true;
    });
    ui.renderPeople(people, (p) => {
      if (!canActOn(role, p.role)) return [];
      const name = p.display_name;
      const id = p.member_id;
      const buttons = [
        ui.personButton("Ask to mute", name, "mod-ask-mute", () => socket.send(proto.modMute(id, { request: true, reason: reason() }))),
        ui.personButton("Mute", name, "mod-mute", () => socket.send(proto.modMute(id, { reason: reason() }))),
        ui.personButton("Remove", name, "mod-kick", () => socket.send(proto.modKick(id, reason()))),
        ui.personButton("Ban", name, "mod-ban", () => socket.send(proto.modBan(id, reason()))),
      ];
      if (role === "owner" && p.role !== "guest") {
        const promote = p.role === "moderator" ? "participant" : "moderator";
        buttons.push(ui.personButton(promote === "moderator" ? "Make moderator" : "Remove moderator", name, "mod-role",
          () => socket.send(proto.modSetRole(id, promote))));
      }
      return buttons;
    });
  }

  function renderKnocks() {
    ui.renderKnocks([...knocks.values()], {
      admit: (knockId) => socket.send(proto.modAdmit(knockId)),
      reject: (knockId) => socket.send(proto.modReject(knockId, reason())),
    });
  }

  function setRole(next) {
    role = next;
    panel.hidden = !isModerator(role);
    if (!isModerator(role)) { knocks.clear(); renderKnocks(); }
    renderAccess();
    renderPeople();
    chat?.setModeration(isModerator(role) ? (seq) => socket.send(proto.modHideMessage(seq)) : null);
  }

  function log(text) {
    ui.logLine(text);
    updateFeed();
  }

  const muteSelf = () => call?.muteMic();

  socket.on(IN.welcome, (f) => {
    ui.showNotice(null);
    setRole(f.member.role);
    if (isModerator(role)) socket.send(proto.modLobbyList());
  });
  socket.on(IN.memberYou, (f) => setRole(f.role));
  for (const type of [IN.presenceJoin, IN.presenceUpdate, IN.presenceLeave]) socket.on(type, () => queueMicrotask(renderPeople));
  socket.on(IN.roomAccess, (f) => { Object.assign(access, f); renderAccess(); if (f.by) log(`${f.by} set the room to: ${accessWords().join(", ")}`); });
  socket.on(IN.modAction, (f) => log(describeAction(f)));
  socket.on(IN.lobbyKnock, (f) => { knocks.set(f.knock_id, /** @type {Knock} */ (/** @type {unknown} */ (f))); renderKnocks(); });
  socket.on(IN.lobbyList, (f) => { knocks.clear(); for (const k of f.knocks) knocks.set(k.knock_id, k); renderKnocks(); });
  socket.on(IN.lobbyResolved, (f) => { knocks.delete(f.knock_id); renderKnocks(); });
  socket.on(IN.modMuted, (f) => { muteSelf(); ui.showNotice(noticeFor(f)); });
  socket.on(IN.modMuteAll, (f) => { if (!isModerator(role)) { muteSelf(); ui.showNotice(noticeFor(f)); } });
  for (const type of [IN.modKicked, IN.modBanned, IN.sessionEnded, IN.lobbyWaiting, IN.modMuteRequest, IN.error]) {
    socket.on(type, (f) => {
      const n = noticeFor(f);
      if (n) ui.showNotice(n);
      if (f.type === IN.error && f.code === "password_required") askPassword();
    });
  }

  function askPassword() {
    // Reconnecting with the same (missing or wrong) password cannot help.
    socket.stop();
    $("room-password-prompt").hidden = false;
    input("room-password-input").focus();
  }
  $("room-password-prompt").addEventListener("submit", (e) => {
    e.preventDefault();
    password = input("room-password-input").value;
    $("room-password-prompt").hidden = true;
    ui.showNotice(null);
    socket.attempt = 0;
    socket.start();
  });

  input("mod-lock").addEventListener("change", () => socket.send(proto.modLock(input("mod-lock").checked)));
  input("mod-lobby").addEventListener("change", () => socket.send(proto.modLobby(input("mod-lobby").checked)));
  $("mod-mute-all").addEventListener("click", () => socket.send(proto.modMuteAll()));
  $("mod-password-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = input("mod-password").value;
    if (value.length >= 4) socket.send(proto.modPassword(value));
    input("mod-password").value = "";
  });
  $("mod-password-clear").addEventListener("click", () => socket.send(proto.modPassword(null)));
  renderAccess();

  return { helloExtras: () => (password ? { password } : {}) };
}
