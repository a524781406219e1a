// The call controller's telemetry: one call.stats frame per tick with a SAMPLE per
// peer in the call, interval figures from the previous report of the same peer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

globalThis.MediaStream = class { constructor(tracks = []) { this.tracks = tracks; } getTracks() { return this.tracks; } };
const { CallController } = await import("../../static/js/call-controller.js");
const { Presence } = await import("../../static/js/presence.js");

const recorded = JSON.parse(readFileSync(new URL("./fixtures/stats-chromium.json", import.meta.url), "utf8"));
const asReport = (entries) => new Map(entries.map((s) => [s.id, s]));

class FakeSocket {
  constructor() { this.handlers = new Map(); this.sent = []; this.state = "open"; }
  on(type, fn) { (this.handlers.get(type) ?? this.handlers.set(type, []).get(type)).push(fn); return this; }
  onState() { return this; }
  send(frame) { this.sent.push(frame); return this.state === "open"; }
  deliver(frame) { for (const fn of this.handlers.get(frame.type) ?? []) fn(frame); }
}

class FakePeer {
  constructor(opts) {
    this.remoteId = opts.remoteId;
    this.reports = [asReport(recorded.first), asReport(recorded.second)];
    this.pc = { connectionState: "connected", signalingState: "stable", addEventListener() {},
      getStats: async () => this.reports.shift() ?? asReport(recorded.second) };
    this.negotiator = { polite: opts.selfId < opts.remoteId };
  }
  addLocalStream() {}
  receiveOnly() {}
  close() { this.pc.connectionState = "closed"; }
  async stats() { return { framesDecoded: 1, packetsLost: 0, packetsReceived: 10, rtt: 0.05, audioLevel: 0 }; }
  setIceConfig() {}
  async setSendLevel(level) { this.sendLevel = level; }
}

const person = (peer_id, name, extra = {}) => ({ peer_id, member_id: peer_id.charCodeAt(0), display_name: name,
  role: "participant", audio: true, video: true, screen: false, in_call: false, ...extra });

async function inCallWith(...ids) {
  const socket = new FakeSocket();
  const presence = new Presence();
  socket.on("welcome", (f) => presence.reset(f.peer_id, f.participants));
  const view = new Proxy({}, { get: () => () => {} });
  const media = { openLocalMedia: async () => ({ getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] }),
    openScreen: async () => null, listDevices: async () => ({ cameras: [], mics: [], speakers: [] }), mediaErrorText: String };
  const c = new CallController({ socket, presence, view, media, now: () => 1733600000123,
    createPeer: (o) => new FakePeer(o) });
  await c.start();
  socket.deliver({ type: "welcome", peer_id: "m", resumed: false, resume: { token: "t" }, ice: null,
    participants: [person("m", "me"), ...ids.map((id) => person(id, id, { in_call: true }))] });
  c.join();
  clearInterval(c.state.statsTimer);
  return { socket, c };
}

test("each tick sends one call.stats frame with a sample per peer, intervals from the tick before", async () => {
  const { socket, c } = await inCallWith("a", "b");
  await c.sendTelemetry();
  await c.sendTelemetry();
  const frames = socket.sent.filter((f) => f.type === "call.stats");
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0].samples.map((s) => s.peer), ["a", "b"]);
  assert.equal(frames[0].samples[0].decoded, null, "the first sample has no interval");
  const second = frames[1].samples[0];
  assert.ok(second.decoded > 0 && second.fps_in > 0, JSON.stringify(second));
  assert.equal(second.t, 1733600000123);
  assert.equal(second.level, "full");
  assert.deepEqual(Object.keys(c.telemetry.last), [], "a Map, read through lastSamples()");
  assert.deepEqual([...c.telemetry.last.keys()], ["a", "b"]);
});

test("the level says what the ladder sends that peer, in the protocol's words", async () => {
  const { socket, c } = await inCallWith("a");
  await c.state.peers.get("a").setSendLevel("audio");
  await c.sendTelemetry();
  assert.equal(socket.sent.at(-1).samples[0].level, "audio");
});

test("nothing is sent out of the call or with nobody to report on", async () => {
  const { socket, c } = await inCallWith();
  await c.sendTelemetry();
  c.leave();
  await c.sendTelemetry();
  assert.equal(socket.sent.filter((f) => f.type === "call.stats").length, 0);
});

test("a peer that left is forgotten: its next connection starts a fresh interval", async () => {
  const { socket, c } = await inCallWith("a");
  await c.sendTelemetry();
  c.dropPeer("a");
  await c.sendTelemetry();
  assert.equal(c.telemetry.reports.size, 0);
  assert.equal(socket.sent.filter((f) => f.type === "call.stats").length, 1);
});

test("the sample carries the predictor's last answer and the ladder's events about that peer", async () => {
  const { socket, c } = await inCallWith("a");
  c.state.adaptMode = "predictive";
  c.state.preds.set("a", 0.3);
  c.logEvent("a", "step:reduced:loss");
  await c.sendTelemetry();
  const sample = socket.sent.at(-1).samples[0];
  assert.equal(sample.pred, 0.3);
  assert.deepEqual(sample.events, ["step:reduced:loss"]);
  await c.sendTelemetry();
  assert.deepEqual(socket.sent.at(-1).samples[0].events, [], "each event is sent once");
});

test("a socket that drops mid-call logs the socket-resume choice once per link, and the sample carries it", async () => {
  const { socket, c } = await inCallWith("a", "b");
  socket.state = "reconnecting";
  c.onSocketState("reconnecting");
  socket.state = "offline";
  c.onSocketState("offline"); // the same outage: not logged again
  assert.deepEqual(c.state.events.map((e) => `${e.peer} ${e.event}`),
    ["a recover:socket-resume:socket-down", "b recover:socket-resume:socket-down"]);
  socket.state = "open";
  await c.sendTelemetry();
  assert.deepEqual(socket.sent.at(-1).samples.map((s) => s.events), [["recover:socket-resume:socket-down"], ["recover:socket-resume:socket-down"]]);
});

test("a resume the server refused logs a rejoin for the rebuilt links", async () => {
  const { socket, c } = await inCallWith("a");
  socket.state = "reconnecting";
  c.onSocketState("reconnecting");
  socket.state = "open";
  socket.deliver({ type: "welcome", peer_id: "m2", resumed: false, resume: { token: "t2" }, ice: null,
    participants: [person("m2", "me"), person("a", "a", { in_call: true })] });
  assert.ok(c.state.events.some((e) => e.peer === "a" && e.event === "recover:rejoin:resume-refused"), JSON.stringify(c.state.events));
});
