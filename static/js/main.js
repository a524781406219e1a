// Wires the layers together for the room page.
import { RoomSocket } from "./socket.js";
import { Presence } from "./presence.js";
import { ensureMember, renderOnline, showConnectionState } from "./ui.js";
import * as call from "./call.js";
import * as chat from "./chat.js";
import * as moderation from "./moderation.js";

const root = document.getElementById("room");
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const features = [];
const socket = new RoomSocket(`${scheme}//${location.host}${root.dataset.wsPath}`, {
  // Each feature may add to hello (resume token, last chat sequence, ...).
  helloExtras: () => Object.assign({}, ...features.map((f) => f.helloExtras?.() ?? {})),
});
const presence = new Presence();
const render = () => renderOnline(presence.list(), presence.selfId);

socket.onState(showConnectionState);
socket.onState((state) => {
  // Closed for good (kicked, banned, logged out): nobody is "here" for this page any more.
  if (state === "closed") { presence.reset(null, []); render(); }
});
socket.on("welcome", (f) => { presence.reset(f.peer_id, f.participants); render(); });
socket.on("presence.join", (f) => { presence.upsert(f.peer); ensureMember(f.peer); render(); });
socket.on("presence.update", (f) => { presence.upsert(f.peer); render(); });
socket.on("presence.leave", (f) => { presence.remove(f.peer_id); render(); });

const ctx = { socket, presence, root };
for (const feature of [call, chat, moderation]) features.push(feature.init(ctx) ?? {});
socket.start();

// Exposed for the browser tests.
// @ts-ignore - a global the tests read, not part of Window
window.huddle = { socket, presence, features };
