// Small DOM-free pieces of the call page: frame builders, blame, the active
// speaker, chat links, the grid shape, initials, the connectivity check.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as proto from "../../static/js/protocol.js";
import { blame, loudest } from "../../static/js/call-quality.js";
import { splitLinks } from "../../static/js/chat-ui.js";
import { checkConnectivity, describeConnectivity } from "../../static/js/netcheck.js";

globalThis.CSS = { escape: (s) => s };
const { gridShape, initials } = await import("../../static/js/call-ui.js");

test("frames are built in one place, with the documented names and fields", () => {
  assert.deepEqual(proto.hello({ in_call: true }), { type: "hello", v: 1, in_call: true });
  assert.deepEqual(proto.signalDescription("offer", "p2", "v=0", { restart: true }),
    { type: "signal.offer", to: "p2", sdp: "v=0", restart: true });
  assert.deepEqual(proto.signalDescription("answer", "p2", "v=0"), { type: "signal.answer", to: "p2", sdp: "v=0" });
  assert.deepEqual(proto.handLower(), { type: "hand.lower" });
  assert.deepEqual(proto.handLower("p3"), { type: "hand.lower", peer_id: "p3" });
  assert.deepEqual(proto.modKick(4), { type: "mod.kick", member_id: 4 });
  assert.deepEqual(proto.modMute(4, { request: true, reason: "loud" }), { type: "mod.mute", member_id: 4, request: true, reason: "loud" });
  assert.deepEqual(proto.chatHistory(null), { type: "chat.history" });
  assert.deepEqual(proto.REACTIONS, ["👍", "👏", "😂", "😮", "❤️", "🎉"]);
});

test("blame: our own trouble, everyone's link at once, one peer's, or the link between two", () => {
  const m = (entries) => new Map(entries);
  assert.equal(blame({ selfTrouble: false, levels: m([["a", "good"]]) }).side, "none");
  assert.equal(blame({ selfTrouble: true, levels: m([["a", "poor"]]) }).side, "self");
  assert.equal(blame({ selfTrouble: false, levels: m([["a", "poor"], ["b", "poor"]]) }).side, "self");
  assert.deepEqual(blame({ selfTrouble: false, levels: m([["a", "poor"], ["b", "good"]]) }), { side: "peer", peers: ["a"] });
  assert.equal(blame({ selfTrouble: false, levels: m([["a", "poor"]]) }).side, "between");
});

test("the active speaker is the loudest above the threshold", () => {
  assert.equal(loudest(new Map([["a", 0.01], ["b", 0.3], ["c", 0.1]])), "b");
  assert.equal(loudest(new Map([["a", 0.01]])), null);
});

test("chat links: http and https only, trailing punctuation stays text", () => {
  assert.deepEqual(splitLinks("see https://example.com/a?b=1."), [
    { text: "see " }, { text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" }, { text: "." }]);
  assert.deepEqual(splitLinks("javascript:alert(1) and ftp://x.y"), [{ text: "javascript:alert(1) and ftp://x.y" }]);
  assert.deepEqual(splitLinks("(http://a.b/c)"), [{ text: "(" }, { text: "http://a.b/c", href: "http://a.b/c" }, { text: ")" }]);
  assert.deepEqual(splitLinks("plain"), [{ text: "plain" }]);
});

test("the grid uses the space: wide stages get columns, tall ones rows, tiles keep 16:9", () => {
  assert.deepEqual(gridShape(1, 1200, 700), { cols: 1, rows: 1, tileWidth: 1200 });
  // 1280x800 and 390x844 screens, less the header and the control bar.
  assert.deepEqual(gridShape(2, 1240, 600), { cols: 2, rows: 1, tileWidth: 620 });
  assert.deepEqual(gridShape(2, 370, 640), { cols: 1, rows: 2, tileWidth: 370 });
  assert.deepEqual(gridShape(3, 1240, 600), { cols: 2, rows: 2, tileWidth: 533 });
  assert.deepEqual(gridShape(4, 1240, 600), { cols: 2, rows: 2, tileWidth: 533 });
  // The gap between tiles is taken from the space: 2 columns of (1240 - 8) / 2.
  assert.deepEqual(gridShape(2, 1240, 600, 8), { cols: 2, rows: 1, tileWidth: 616 });
  // A wide, low stage (the chat open beside two people): two tiles side by side would be
  // 440 wide, stacked 515 (limited by the height), so they stack and keep 16:9.
  assert.deepEqual(gridShape(2, 880, 580), { cols: 1, rows: 2, tileWidth: 515 });
  // No room at all is no tile, not a negative one.
  assert.deepEqual(gridShape(3, 0, 0, 8), { cols: 1, rows: 3, tileWidth: 0 });
  assert.equal(initials("Ada Lovelace"), "AL");
  assert.equal(initials("bob"), "B");
});

test("the connectivity check reports which candidate types came and says what they mean", async () => {
  class PC {
    constructor(cfg) { this.cfg = cfg; }
    createDataChannel() {}
    async createOffer() { return { type: "offer", sdp: "" }; }
    async setLocalDescription() {
      queueMicrotask(() => {
        this.onicecandidate({ candidate: { candidate: "candidate:1 1 udp 1 10.0.0.2 5000 typ host" } });
        this.onicecandidate({ candidate: { candidate: "candidate:2 1 udp 1 1.2.3.4 5000 typ srflx", type: "srflx" } });
        this.onicecandidate({ candidate: null });
      });
    }
    close() {}
  }
  const ice = { ice_servers: [{ urls: ["stun:s"] }, { urls: ["turn:t"], username: "u", credential: "c" }], ice_transport_policy: "all", expires_at: 1 };
  const found = await checkConnectivity(ice, { PC });
  assert.deepEqual(found, { host: true, srflx: true, relay: false, stun: true, turn: true });
  const lines = describeConnectivity(found);
  assert.deepEqual(lines.map((l) => l.ok), [true, true, false]);
  assert.match(lines[2].text, /TURN relay is not reachable/);
});

test("a remote tile's notice: audio only says why, lower quality is quiet, a frozen or paused video shows initials", async () => {
  const { remoteVideoNotice } = await import("../../static/js/call-ui.js");
  const r = (x) => ({ level: null, reason: null, paused: null, frozen: false, ...x });
  assert.deepEqual(remoteVideoNotice("bob", r({ level: "audio", reason: "loss" })),
    { text: "bob: audio only (poor connection)", tone: "warn", hideVideo: true, state: "audio" });
  assert.equal(remoteVideoNotice("bob", r({ level: "audio", reason: "manual" })).text, "bob: audio only (paused)");
  assert.deepEqual(remoteVideoNotice("bob", r({ level: "low", reason: "bandwidth" })),
    { text: "lower quality", tone: "quiet", hideVideo: false, state: "low" });
  assert.equal(remoteVideoNotice("bob", r({ frozen: true })).text, "bob: video interrupted (connection problem)");
  assert.equal(remoteVideoNotice("bob", r({ paused: "low-bandwidth", level: "audio" })).text, "bob: video off (low-bandwidth mode)");
  assert.deepEqual(remoteVideoNotice("bob", r({ level: "full", reason: "recovered" })), { text: "", tone: "", hideVideo: false, state: "full" });
});
