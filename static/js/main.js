// Wires the layers together for the room page: one socket, the presence list,
// the side panels, and the call, chat and moderation features (each gets what
// it needs from the others here, as a function, never through window).
import { RoomSocket } from "./socket.js";
import { Presence } from "./presence.js";
import { IN } from "./protocol.js";
import { ensureMember, renderOnline, showConnectionState } from "./ui.js";
import { createPanels } from "./panels.js";
import * as call from "./call.js";
import * as chat from "./chat.js";
import * as moderation from "./moderation.js";

const root = /** @type {HTMLElement} */ (document.getElementById("room"));
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
/** @type {{helloExtras?: () => object}[]} */
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
socket.on(IN.welcome, (f) => { presence.reset(f.peer_id, f.participants); render(); });
socket.on(IN.presenceJoin, (f) => { presence.upsert(f.peer); ensureMember(f.peer); render(); });
socket.on(IN.presenceUpdate, (f) => { presence.upsert(f.peer); render(); });
socket.on(IN.presenceLeave, (f) => { presence.remove(f.peer_id); render(); });
// The browser knows first when the network goes and comes back.
window.addEventListener("offline", () => socket.setOnline(false));
window.addEventListener("online", () => socket.setOnline(true));

const panels = createPanels(root);
const ctx = { socket, presence, root, panels };
const callFeature = call.init(ctx);
const chatFeature = chat.init(ctx);
const modFeature = moderation.init({ ...ctx, call: callFeature, chat: chatFeature });
for (const f of [callFeature, chatFeature, modFeature]) if (f) features.push(f);

panels.onChange((open) => chatFeature?.setVisible(open === "chat"));
// The chat starts open where there is room beside the stage.
if (window.matchMedia("(min-width: 801px)").matches) panels.open("chat");
else chatFeature?.setVisible(false);
// C opens and closes the chat (M, V and H are the call's).
document.addEventListener("keydown", (e) => {
  if (e.key.toLowerCase() !== "c" || e.ctrlKey || e.metaKey || e.altKey || call.isTyping(e.target)) return;
  e.preventDefault();
  panels.toggle("chat");
  if (panels.isOpen("chat")) /** @type {HTMLElement|null} */ (document.getElementById("chat-input"))?.focus();
});
socket.start();

// Exposed for the browser tests.
// @ts-ignore - a global the tests read, not part of Window
window.huddle = { socket, presence, features, panels };
