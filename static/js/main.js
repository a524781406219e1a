// Wires the layers together for the room page.
import { RoomSocket } from "./socket.js";
import { Presence } from "./presence.js";
import { ensureMember, renderOnline, showConnectionState } from "./ui.js";

const root = document.getElementById("room");
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new RoomSocket(`${scheme}//${location.host}${root.dataset.wsPath}`);
const presence = new Presence();
const render = () => renderOnline(presence.list(), presence.selfId);

socket.onState(showConnectionState);
socket.on("welcome", (f) => { presence.reset(f.peer_id, f.participants); render(); });
socket.on("presence.join", (f) => { presence.upsert(f.peer); ensureMember(f.peer); render(); });
socket.on("presence.update", (f) => { presence.upsert(f.peer); render(); });
socket.on("presence.leave", (f) => { presence.remove(f.peer_id); render(); });
socket.start();

// Exposed for the browser tests and for the call and chat modules.
window.huddle = { socket, presence };
