// The recovery choice (static/js/recovery.js) and a Peer carrying it out on a fake
// RTCPeerConnection: ICE restarts, then the relay when the direct path keeps failing.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { chooseRecovery, hasTurn, recoveryEvent, RELAY_AFTER, STABLE_MS } from "../../static/js/recovery.js";

const link = (extra = {}) => ({ socket: "open", ice: "failed", restarts: 0, relayOnly: false, turn: true, ...extra });

test("a broken link with the socket up gets an ICE restart first", () => {
  assert.deepEqual(chooseRecovery(link()), { choice: "ice-restart", reason: "failed" });
  assert.deepEqual(chooseRecovery(link({ ice: "disconnected", restarts: 1 })), { choice: "ice-restart", reason: "disconnected" });
});

test("after RELAY_AFTER restarts without a lasting connection the pair moves to the relay", () => {
  assert.equal(RELAY_AFTER, 2);
  assert.deepEqual(chooseRecovery(link({ restarts: 2 })), { choice: "relay", reason: "direct-failed-2" });
  assert.equal(recoveryEvent(chooseRecovery(link({ restarts: 3 }))), "recover:relay:direct-failed-3");
});

test("no relay without a TURN server, nor twice; the relay that fails gets restarts", () => {
  assert.deepEqual(chooseRecovery(link({ restarts: 5, turn: false })), { choice: "ice-restart", reason: "failed" });
  assert.deepEqual(chooseRecovery(link({ restarts: 2, relayOnly: true })), { choice: "ice-restart", reason: "relay-failed" });
});

test("a socket that is down comes first: nothing renegotiates without it", () => {
  assert.deepEqual(chooseRecovery(link({ socket: "reconnecting", restarts: 4 })), { choice: "socket-resume", reason: "socket-down" });
  assert.deepEqual(chooseRecovery(link({ socket: "offline", ice: "connected" })), { choice: "socket-resume", reason: "offline" });
});

test("a refused resume or a peer that is gone means rejoining, whatever the link", () => {
  assert.deepEqual(chooseRecovery(link({ resumeRefused: true, socket: "open" })), { choice: "rejoin", reason: "resume-refused" });
  assert.deepEqual(chooseRecovery(link({ peerPresent: false })), { choice: "rejoin", reason: "peer-gone" });
});

test("a healthy link needs nothing", () => {
  assert.deepEqual(chooseRecovery(link({ ice: "connected" })), { choice: "none", reason: "connected" });
});

test("a TURN server is one with a turn: or turns: URL", () => {
  assert.equal(hasTurn({ ice_servers: [{ urls: ["stun:x:3478"] }] }), false);
  assert.equal(hasTurn({ ice_servers: [{ urls: ["stun:x"] }, { urls: "turns:x:443" }] }), true);
  assert.equal(hasTurn(null), false);
});

// --- a Peer carrying it out --------------------------------------------------------
class FakePC {
  constructor(config) {
    this.configs = [config];
    this.connectionState = "new";
    this.iceConnectionState = "new";
    this.signalingState = "stable";
    this.restarts = 0;
  }
  setConfiguration(config) { this.configs.push(config); }
  async setLocalDescription() {}
  restartIce() { this.restarts += 1; }
  createDataChannel(label, opts) { return { label, ...opts, readyState: "connecting" }; }
  close() { this.connectionState = "closed"; }
  ice(state) { this.iceConnectionState = state; this.oniceconnectionstatechange(); }
}
globalThis.RTCPeerConnection = FakePC;
globalThis.MediaStream = class { addTrack() {} };
const { Peer } = await import("../../static/js/peer.js");

const ICE = { ice_servers: [{ urls: ["turn:127.0.0.1:3478"], username: "u", credential: "c" }], ice_transport_policy: "all", expires_at: null };

test("a direct path that keeps failing: two ICE restarts, then this connection goes relay-only", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const choices = [];
    const peer = new Peer({ selfId: "a", remoteId: "b", ice: ICE, send: () => {}, onStream: () => {}, onState: () => {},
      onRecover: (p) => { const c = chooseRecovery(link({ ice: p.pc.iceConnectionState, restarts: p.restarts, relayOnly: p.relayOnly })); choices.push(c); return c; } });
    const pc = /** @type {FakePC} */ (/** @type {unknown} */ (peer.pc));
    pc.ice("connected");
    pc.ice("failed");
    pc.ice("checking");
    pc.ice("connected"); // back, but not for long
    mock.timers.tick(STABLE_MS - 1);
    pc.ice("disconnected");
    mock.timers.tick(3000);
    pc.ice("failed");
    assert.deepEqual(choices.map(recoveryEvent), ["recover:ice-restart:failed", "recover:ice-restart:disconnected", "recover:relay:direct-failed-2"]);
    assert.equal(pc.restarts, 3);
    assert.equal(peer.relayOnly, true);
    assert.equal(pc.configs.at(-1).iceTransportPolicy, "relay");
    peer.setIceConfig(ICE); // refreshed credentials keep the relay
    assert.equal(pc.configs.at(-1).iceTransportPolicy, "relay");
    pc.ice("connected");
    mock.timers.tick(STABLE_MS);
    assert.equal(peer.restarts, 0, "a connection that held counts as recovered");
    peer.close();
  } finally {
    mock.timers.reset();
  }
});

test("without onRecover a broken link still gets an ICE restart", () => {
  const peer = new Peer({ selfId: "a", remoteId: "b", ice: null, send: () => {}, onStream: () => {}, onState: () => {} });
  const pc = /** @type {FakePC} */ (/** @type {unknown} */ (peer.pc));
  pc.ice("failed");
  assert.equal(pc.restarts, 1);
  peer.close();
});
