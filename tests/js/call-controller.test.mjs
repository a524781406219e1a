// The DOM-free call controller against a scripted socket, fake peers and a
// recording view: joining, leaving and rejoining, clear ends, lingering peers,
// hands and reactions, TURN refresh, offline.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { sentByKind } from "../../static/js/stats-sample.js";

globalThis.MediaStream = class { constructor(tracks = []) { this.tracks = tracks; } getTracks() { return this.tracks; } };
const { CallController, endSentence, LINGER_MAX_MS } = await import("../../static/js/call-controller.js");
const { Presence } = await import("../../static/js/presence.js");

class FakeSocket {
  constructor() { this.handlers = new Map(); this.states = []; this.sent = []; this.state = "open"; this.stopped = false; }
  on(type, fn) { (this.handlers.get(type) ?? this.handlers.set(type, []).get(type)).push(fn); return this; }
  onState(fn) { this.states.push(fn); return this; }
  send(frame) { this.sent.push(frame); return this.state === "open"; }
  stop() { this.stopped = true; }
  deliver(frame) { for (const fn of this.handlers.get(frame.type) ?? []) fn(frame); }
  setState(state, detail = {}) { this.state = state; for (const fn of this.states) fn(state, detail); }
  types() { return this.sent.map((f) => f.type); }
}

function track(kind) {
  return { kind, enabled: true, readyState: "live", stopped: false, stop() { this.stopped = true; this.readyState = "ended"; },
    getSettings: () => ({ deviceId: `${kind}-1` }), addEventListener() {} };
}
function stream() {
  const tracks = [track("audio"), track("video")];
  return { tracks, getTracks: () => tracks, getAudioTracks: () => tracks.filter((t) => t.kind === "audio"),
    getVideoTracks: () => tracks.filter((t) => t.kind === "video") };
}

class FakePeer {
  constructor(opts) {
    this.opts = opts;
    this.remoteId = opts.remoteId;
    this.pc = { connectionState: "connected", iceConnectionState: "connected", signalingState: "stable", addEventListener() {} };
    this.negotiator = { polite: opts.selfId < opts.remoteId };
    this.closed = false;
    this.frames = 0;
    this.received = [];
    this.audio = null;
    this.video = null;
    this.sentPackets = 0;
    this.silent = false; // nothing came from the peer for peer.js SILENT_MS
    this.bwOut = 2_000_000; // the available outgoing bitrate (bit/s)
    this.qlr = "none";
    this.lossOut = 0; // what the peer reports losing of what we send
    this.lostOut = 0; // ...cumulative
    this.lostIn = 0; // what we lose of what it sends (cumulative)
    this.sendLevel = "full";
    this.levels = [];
    this.remoteWantsVideo = true;
    this.control = [];
  }
  addLocalStream(s) { this.local = s; }
  receiveOnly() {}
  async replaceVideo(t) { this.video = t; }
  async replaceAudio(t) { this.audio = t; }
  receive(f) { this.received.push(f); }
  close() { this.closed = true; this.pc.connectionState = "closed"; }
  async stats() {
    this.sentPackets += 100;
    this.lostOut += Math.round(100 * this.lossOut);
    return { framesDecoded: this.frames, packetsLost: this.lostIn, packetsReceived: this.frames * 10, rtt: 0.05, audioLevel: 0,
      t: this.opts.now?.() ?? Date.now(), bwOut: this.bwOut, qlr: this.qlr, silent: this.silent,
      sent: this.readSent() };
  }
  /** What a Chromium report of our video says (one receiver report per reading), through sentByKind. */
  readSent() {
    const report = new Map([
      ["o", { type: "outbound-rtp", kind: "video", packetsSent: this.sentPackets, bytesSent: this.sentPackets * 1000 }],
      ["r", { type: "remote-inbound-rtp", kind: "video", packetsLost: this.lostOut, fractionLost: this.lossOut, timestamp: this.sentPackets }],
    ]);
    this.lastSent = sentByKind(report, this.lastSent ?? null);
    return this.lastSent;
  }
  linkUp() { return ["connected", "completed"].includes(this.pc.iceConnectionState); }
  setIceConfig() {}
  recoverIfBroken() { return false; }
  async setSendLevel(level) { this.sendLevel = level; this.levels.push(level); }
  async setRemoteWantsVideo(want) { this.remoteWantsVideo = want; }
  sendControl(text) { this.control.push(JSON.parse(text)); return true; }
}

function recorder() {
  const calls = [];
  const view = new Proxy({}, { get: (_, name) => (...args) => { calls.push([name, ...args]); } });
  return { view, calls, last: (name) => calls.filter((c) => c[0] === name).at(-1) };
}

const person = (peer_id, name, extra = {}) => ({ peer_id, member_id: peer_id.charCodeAt(0), display_name: name, role: "participant",
  audio: true, video: true, screen: false, in_call: false, ...extra });

async function setup({ participants = [], now } = {}) {
  const socket = new FakeSocket();
  const presence = new Presence();
  // main.js keeps presence in step with the socket before the features see a frame.
  socket.on("welcome", (f) => presence.reset(f.peer_id, f.participants));
  socket.on("presence.join", (f) => presence.upsert(f.peer));
  socket.on("presence.update", (f) => presence.upsert(f.peer));
  socket.on("presence.leave", (f) => presence.remove(f.peer_id));
  const { view, calls, last } = recorder();
  const peers = [];
  const opened = [];
  const media = {
    openLocalMedia: async () => { const s = stream(); opened.push(s); return s; },
    openScreen: async () => track("video"),
    listDevices: async () => ({ cameras: [], mics: [], speakers: [] }),
    mediaErrorText: (e) => String(e),
  };
  const c = new CallController({ socket, presence, view, media, now,
    createPeer: (o) => { const p = new FakePeer(o); peers.push(p); return p; } });
  await c.start();
  socket.deliver({ type: "welcome", peer_id: "m", resumed: false, resume: { token: "t" }, ice: null,
    participants: [person("m", "me"), ...participants] });
  return { socket, presence, c, view, calls, last, peers, opened };
}

test("join is offered only after the welcome and the preview, then connects to those already in the call", async () => {
  const { socket, c, calls, peers } = await setup({ participants: [person("a", "ann", { in_call: true }), person("z", "zed")] });
  assert.deepEqual(calls.filter((x) => x[0] === "setJoinable").at(-1), ["setJoinable", true, ""]);
  c.join();
  assert.deepEqual(socket.sent.at(0), { type: "presence.update", in_call: true, audio: true, video: true });
  assert.deepEqual(peers.map((p) => p.remoteId), ["a"], "only the one in the call");
  clearInterval(c.state.statsTimer);
});

test("a guest waiting in the lobby cannot press Join and is told why", async () => {
  const socket = new FakeSocket();
  const { view, last } = recorder();
  const c = new CallController({ socket, presence: new Presence(), view,
    media: { openLocalMedia: async () => stream(), listDevices: async () => ({ cameras: [], mics: [], speakers: [] }), mediaErrorText: String, openScreen: async () => track("video") } });
  await c.start();
  socket.deliver({ type: "lobby.waiting", knock_id: "k" });
  assert.deepEqual(last("setJoinable"), ["setJoinable", false, "Waiting for a moderator to let you in…"]);
  c.join();
  assert.equal(c.state.inCall, false);
});

test("leave keeps the socket and chat, stops the camera; rejoin needs no reload", async () => {
  const { socket, c, peers, opened, last } = await setup({ participants: [person("a", "ann", { in_call: true })] });
  c.join();
  c.leave();
  assert.equal(socket.stopped, false, "the room socket stays for the chat");
  assert.ok(!socket.types().includes("leave"));
  assert.deepEqual(socket.sent.at(-1), { type: "presence.update", in_call: false });
  assert.ok(peers[0].closed);
  assert.ok(opened[0].tracks.every((t) => t.stopped), "camera and microphone released");
  assert.deepEqual(last("showEnded"), ["showEnded", "You left the call. The chat stays open here.", { rejoin: true }]);
  await c.rejoin();
  assert.equal(c.state.inCall, true);
  assert.equal(opened.length, 2, "media opened again");
  assert.deepEqual(socket.sent.filter((f) => f.in_call === true).length, 2);
  clearInterval(c.state.statsTimer);
});

test("a removal ends the call at once: tracks stop, the person reads who, why and when they may come back", async () => {
  const { socket, c, peers, opened, last } = await setup({ participants: [person("a", "ann", { in_call: true })] });
  c.join();
  socket.deliver({ type: "mod.kicked", by: "olivia", reason: "shouting" });
  assert.ok(peers[0].closed);
  assert.ok(opened[0].tracks.every((t) => t.stopped));
  assert.equal(c.state.inCall, false);
  const [, text, opts] = last("showEnded");
  assert.equal(text, "olivia removed you from this room. Reason: shouting. You can come back in 5 minutes with the room's link.");
  assert.deepEqual(opts, { rejoin: false });
  socket.setState("closed", { code: 4001 });
  assert.equal(last("showEnded")[1], text, "the close that follows does not overwrite it");
  c.join();
  assert.equal(c.state.inCall, false, "no way back in from this page");
});

test("every final close has a plain sentence; the password prompt (4424) is not an end", () => {
  assert.match(endSentence(null, 4003), /banned you from this room\. You cannot come back unless a moderator lifts the ban/);
  assert.match(endSentence({ type: "mod.banned", by: "olivia", reason: "spam", until: "2030-01-01T00:00:00Z" }, 4003),
    /^olivia banned you from this room until .+\. Reason: spam\. You can come back after that\.$/);
  assert.match(endSentence({ type: "session.ended", reason: "logged_out" }, 4401), /You logged out/);
  assert.match(endSentence(null, 4404), /room was closed/);
  assert.match(endSentence({ type: "error", code: "lobby_rejected", reason: "full" }, 4403), /did not let you in\. Reason: full\./);
  assert.equal(endSentence(null, 4424), null);
});

test("a peer the server lost keeps its tile while its media still decodes, then goes", async () => {
  let now = 1000;
  const { socket, c, peers, calls } = await setup({ participants: [person("a", "ann", { in_call: true })], now: () => now });
  c.join();
  clearInterval(c.state.statsTimer);
  const peer = peers[0];
  peer.frames = 10;
  await c.sampleStats();
  socket.deliver({ type: "presence.leave", peer_id: "a", reason: "timeout" });
  assert.ok(!calls.some((x) => x[0] === "removeTile" && x[1] === "a"), "tile kept");
  peer.frames = 20;
  await c.sampleStats();
  assert.ok(c.state.peers.has("a"), "still flowing: still shown");
  await c.sampleStats(); // no new frames
  assert.ok(calls.some((x) => x[0] === "removeTile" && x[1] === "a"), "frames stopped: tile removed");
  assert.ok(peer.closed);
  void LINGER_MAX_MS;
});

test("a peer that left on purpose is removed at once", async () => {
  const { socket, c, calls } = await setup({ participants: [person("a", "ann", { in_call: true })] });
  c.join();
  clearInterval(c.state.statsTimer);
  socket.deliver({ type: "presence.leave", peer_id: "a", reason: "left" });
  assert.ok(calls.some((x) => x[0] === "removeTile" && x[1] === "a"));
  assert.ok(calls.some((x) => x[0] === "showStatus" && x[1] === "ann left the call."));
});

test("hands: queue in raise order (late joiners from hand_at), own toggle sends raise then lower", async () => {
  const { socket, c, last } = await setup({
    participants: [person("a", "ann", { in_call: true, hand_at: "2026-11-28T10:00:05Z" })],
  });
  socket.deliver({ type: "hand.raised", peer_id: "b", member_id: 2, name: "bob", at: "2026-11-28T10:00:01Z" });
  assert.deepEqual(last("showHands")[1].map((h) => h.name), ["bob", "ann"]);
  c.join();
  c.toggleHand();
  assert.equal(socket.sent.at(-1).type, "hand.raise");
  socket.deliver({ type: "hand.raised", peer_id: "m", member_id: 1, name: "me", at: "2026-11-28T10:00:09Z" });
  c.toggleHand();
  assert.equal(socket.sent.at(-1).type, "hand.lower");
  socket.deliver({ type: "hand.lowered", peer_id: "b", by_member_id: 1 });
  socket.deliver({ type: "presence.leave", peer_id: "a", reason: "left" });
  assert.deepEqual(last("showHands")[1].map((h) => h.name), ["me"]);
  c.react("🎉");
  assert.deepEqual(socket.sent.at(-1), { type: "reaction.send", emoji: "🎉", ref: "reaction" });
  socket.deliver({ type: "reaction", peer_id: "a", member_id: 3, name: "ann", emoji: "👍" });
  assert.deepEqual(last("showReaction"), ["showReaction", { peer_id: "a", name: "ann", emoji: "👍" }]);
  clearInterval(c.state.statsTimer);
});

test("TURN credentials are refreshed at 80 % of their life", async () => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  try {
    const { socket, c } = await setup({ now: () => Date.now() });
    c.setIce({ ice_servers: [], ice_transport_policy: "all", expires_at: 100 });
    mock.timers.tick(79_999);
    assert.ok(!socket.types().includes("turn.refresh"));
    mock.timers.tick(2);
    assert.ok(socket.types().includes("turn.refresh"));
  } finally {
    mock.timers.reset();
  }
});

test("offline is said at once, and a problem on our side is not blamed on the other", async () => {
  const { socket, c, calls, last } = await setup({ participants: [person("a", "ann", { in_call: true })] });
  c.join();
  clearInterval(c.state.statsTimer);
  socket.setState("offline", {});
  assert.match(last("showStatus")[1], /^You are offline\./);
  assert.deepEqual(last("showCallState"), ["showCallState", "You are offline", "offline"]);
  c.state.quality.set("a", "poor");
  c.sayWhoseProblem();
  assert.equal(last("showStatus")[1], "Your connection is poor; others may see you freeze.");
  assert.ok(!calls.some((x) => x[0] === "showStatus" && /ann's connection/.test(x[1])));
});

test("a new camera replaces the track on every connection without renegotiating", async () => {
  const { c, peers, opened } = await setup({ participants: [person("a", "ann", { in_call: true })] });
  c.join();
  clearInterval(c.state.statsTimer);
  await c.changeDevices({ videoId: "cam-2" });
  assert.equal(peers[0].video, opened[1].tracks[1]);
  assert.equal(peers[0].audio, opened[1].tracks[0]);
  assert.ok(opened[0].tracks.every((t) => t.stopped), "the old camera is released");
  assert.equal(c.state.local, opened[1]);
});

test("a socket we stopped ourselves (the password prompt) does not end the call page", async () => {
  const { socket, c, calls } = await setup();
  socket.stopped = true;
  socket.setState("closed", { code: 1000 });
  assert.equal(c.state.ended, false);
  assert.ok(!calls.some((x) => x[0] === "showEnded"));
  socket.stopped = false;
  socket.setState("closed", { code: 4404 });
  assert.equal(c.state.ended, true);
});

// --- adaptation ----------------------------------------------------------------------
async function inCallWithAnn() {
  let t = 1_000_000;
  const env = await setup({ participants: [person("a", "ann", { in_call: true })], now: () => t });
  env.c.join();
  clearInterval(env.c.state.statsTimer);
  const tick = async (n = 1) => { for (let i = 0; i < n; i++) { t += 2000; await env.c.sampleStats(); } };
  return { ...env, peer: env.peers[0], tick };
}

test("what we send steps down from the loss the peer reports of OUR stream, tells the peer, and logs the step", async () => {
  const { c, peer, tick, calls } = await inCallWithAnn();
  peer.lossOut = 0.2;
  await tick(3);
  assert.deepEqual(peer.levels, ["reduced"]);
  assert.deepEqual(peer.control.filter((m) => m.level), [{ level: "reduced", reason: "loss" }]);
  assert.deepEqual(c.state.events.map((e) => [e.peer, e.event]), [["a", "step:reduced:loss"]]);
  assert.deepEqual(c.sendLevels(), { a: "reduced" });
  assert.ok(calls.some((x) => x[0] === "showStatus" && /Weak link to ann: sending lower-quality video/.test(x[1])));
  assert.deepEqual(c.takeEvents("a"), ["step:reduced:loss"]);
  assert.deepEqual(c.takeEvents("a"), [], "taken once");
});

test("a link that is down does not step the ladder: its losses are the outage's", async () => {
  const { peer, tick } = await inCallWithAnn();
  peer.pc.iceConnectionState = "disconnected";
  peer.lossOut = 1;
  await tick(4);
  assert.deepEqual(peer.levels, [], "no step while down");
  peer.pc.iceConnectionState = "connected";
  peer.lossOut = 0.2;
  await tick(3);
  assert.deepEqual(peer.levels, ["reduced"], "congestion loss once it is back still steps");
});

test("a link silent while ICE still says connected does not step the ladder either", async () => {
  const { peer, tick } = await inCallWithAnn();
  peer.silent = true; // a blackout ICE has not noticed yet
  peer.lossOut = 1;
  await tick(4);
  assert.deepEqual(peer.levels, [], "no step while silent");
  peer.silent = false;
  peer.lossOut = 0.2;
  await tick(3);
  assert.deepEqual(peer.levels, ["reduced"], "congestion loss once it is heard again still steps");
});

test("after a silent spell the ladder waits out the warm-up before a bandwidth step", async () => {
  const { c, peer, tick } = await inCallWithAnn();
  peer.opts.now = () => c.now(); // the readings on the test's clock
  await tick(4); // past the start's warm-up
  peer.silent = true;
  await tick(2);
  peer.silent = false;
  peer.bwOut = 40_000; // the estimate decayed while nothing came back
  peer.qlr = "bandwidth";
  await tick(3);
  assert.deepEqual(peer.levels, [], "not on the decayed estimate");
  await tick(1);
  assert.deepEqual(peer.levels, ["low"], "6 s on: a path that stays that thin steps (the estimate alone: to low at most)");
});

test("losing what we RECEIVE does not change what we send", async () => {
  const { peer, tick } = await inCallWithAnn();
  for (let i = 0; i < 6; i++) { peer.lostIn += 500; peer.frames += 30; await tick(); }
  assert.deepEqual(peer.levels, []);
});

test("adaptation off holds full video; a forced level holds and is told to the peer", async () => {
  const { c, peer, tick } = await inCallWithAnn();
  c.setAdaptMode("off");
  peer.lossOut = 0.5;
  await tick(4);
  assert.deepEqual(peer.levels, []);
  await c.forceSendLevel("audio");
  assert.deepEqual(peer.control.at(-1), { level: "audio", reason: "manual" });
  assert.equal(peer.sendLevel, "audio");
  assert.throws(() => c.setAdaptMode("sometimes"));
});

test("predictive mode steps down when the predictor says trouble, and logs the prediction", async () => {
  const { c, peer, tick } = await inCallWithAnn();
  c.setAdaptMode("predictive");
  const seen = [];
  c.setPredictor((views) => { seen.push(views.length); return views.length >= 2 ? 0.9 : 0.1; });
  await tick(2);
  assert.deepEqual(peer.levels, ["reduced"]);
  assert.deepEqual(c.state.events.map((e) => e.event), ["predict:0.90", "step:reduced:predicted"]);
  assert.deepEqual(seen, [1, 2]);
});

test("a model's threshold is where the ladder acts on it, and the telemetry carries the prediction", async () => {
  const { c, peer, tick, socket } = await inCallWithAnn();
  peer.pc.getStats = async () => new Map(); // an empty report: the telemetry sample still goes
  c.setAdaptMode("predictive");
  let p = 0.8;
  c.setPredictor(() => p, { threshold: 0.85 });
  await tick(2);
  assert.deepEqual(peer.levels, [], "0.8 is under the model's threshold");
  p = 0.9;
  await tick(1);
  assert.deepEqual(peer.levels, ["reduced"]);
  await tick(1);
  const stats = socket.sent.filter((f) => f.type === "call.stats").at(-1);
  assert.equal(stats?.samples[0].pred, 0.9);
  c.setAdaptMode("reactive");
  await tick(1);
  assert.equal(socket.sent.filter((f) => f.type === "call.stats").at(-1)?.samples[0].pred, null);
});

test("low-bandwidth mode asks every peer to stop its video and resumes it after", async () => {
  const { c, peer, last } = await inCallWithAnn();
  c.controlOpened("a");
  assert.deepEqual(peer.control, [{ want_video: true }]);
  c.setLowBandwidth(true);
  assert.deepEqual(peer.control.at(-1), { want_video: false });
  assert.deepEqual(last("showLowBandwidth"), ["showLowBandwidth", true]);
  assert.equal(last("setTileRemoteVideo")[2].paused, "low-bandwidth");
  c.setTileVisible("a", false); // no change: still no video wanted
  assert.equal(peer.control.length, 2);
  c.setLowBandwidth(false);
  assert.deepEqual(peer.control.at(-1), { want_video: false }, "its tile is still off-screen");
  c.setTileVisible("a", true);
  assert.deepEqual(peer.control.at(-1), { want_video: true });
  c.setPageVisible(false);
  assert.deepEqual(peer.control.at(-1), { want_video: false });
  assert.equal(last("setTileRemoteVideo")[2].paused, "hidden");
});

test("the peer's media-control messages: its level shows on its tile, its want_video pauses our video to it", async () => {
  const { c, peer, last } = await inCallWithAnn();
  c.onControl("a", { level: "audio", reason: "loss" });
  assert.deepEqual(last("setTileRemoteVideo"), ["setTileRemoteVideo", "a", { level: "audio", reason: "loss", paused: null, frozen: false }]);
  c.onControl("a", { want_video: false });
  assert.equal(peer.remoteWantsVideo, false);
});

test("a video that stops with no word from the sender is labelled frozen, and not when it said audio only", async () => {
  const { c, peer, tick, last } = await inCallWithAnn();
  peer.frames = 10;
  await tick(2);
  peer.frames = 20;
  await tick();
  await tick();
  assert.equal(last("setTileRemoteVideo")[2].frozen, true);
  peer.frames = 30;
  await tick();
  assert.equal(last("setTileRemoteVideo")[2].frozen, false);
  c.onControl("a", { level: "audio", reason: "bandwidth" });
  const before = c.state.quality.get("a");
  await tick(2);
  assert.equal(last("setTileRemoteVideo")[2].frozen, false);
  assert.notEqual(c.state.quality.get("a"), "poor", "audio only is not a poor link");
  assert.ok(before !== undefined);
});
