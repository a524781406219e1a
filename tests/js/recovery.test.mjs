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

test("a restart of ours that stalled is broken whatever ICE says, unless the link is up", () => {
  assert.deepEqual(chooseRecovery(link({ ice: "checking", restarts: 1, stalled: true })), { choice: "ice-restart", reason: "restart-stalled" });
  assert.deepEqual(chooseRecovery(link({ ice: "new", restarts: 2, stalled: true })), { choice: "relay", reason: "direct-failed-2" });
  assert.deepEqual(chooseRecovery(link({ ice: "disconnected", restarts: 3, relayOnly: true, stalled: true })), { choice: "ice-restart", reason: "relay-failed" });
  assert.deepEqual(chooseRecovery(link({ ice: "connected", restarts: 3, stalled: true })), { choice: "none", reason: "connected" });
  assert.deepEqual(chooseRecovery(link({ ice: "checking", restarts: 1 })), { choice: "none", reason: "connected" }, "not stalled: ICE is still at it");
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
const { Peer, RESTART_WATCHDOG_MS } = await import("../../static/js/peer.js");

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

test("a restart that leaves the link without a working pair is tried again, with recovery's choice then", () => {
  // Both sides moved to the relay at once and ICE stayed "disconnected", with no further
  // state change to act on (CI): the restart watchdog acts instead.
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const asked = [];
    const peer = new Peer({ selfId: "a", remoteId: "b", ice: ICE, send: () => {}, onStream: () => {}, onState: () => {},
      onRecover: (p, why) => {
        const c = chooseRecovery(link({ ice: p.pc.iceConnectionState, restarts: p.restarts, relayOnly: p.relayOnly, ...why }));
        asked.push(recoveryEvent(c));
        return c;
      } });
    const pc = /** @type {FakePC} */ (/** @type {unknown} */ (peer.pc));
    pc.connectionState = "connected"; // the call was up: the connect watchdog is done
    peer.stateChanged();
    peer.restarts = 2;
    pc.ice("connected");
    pc.ice("disconnected");
    mock.timers.tick(3000);
    assert.deepEqual(asked, ["recover:relay:direct-failed-2"]);
    mock.timers.tick(RESTART_WATCHDOG_MS - 1);
    assert.equal(asked.length, 1, "not before the watchdog");
    mock.timers.tick(1); // still "disconnected": no event came, the watchdog asks again
    assert.deepEqual(asked, ["recover:relay:direct-failed-2", "recover:ice-restart:relay-failed"]);
    assert.equal(pc.restarts, 2);
    pc.iceConnectionState = "checking"; // no event either
    mock.timers.tick(RESTART_WATCHDOG_MS);
    assert.equal(asked.at(-1), "recover:ice-restart:relay-failed");
    assert.equal(pc.restarts, 3, "and again while nothing connects");
    pc.ice("connected");
    mock.timers.tick(RESTART_WATCHDOG_MS * 3);
    assert.equal(pc.restarts, 3, "a link that is back stops the watchdog");
    peer.close();
  } finally {
    mock.timers.reset();
  }
});

test("a restart that brings the link back in time is not repeated", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const peer = new Peer({ selfId: "a", remoteId: "b", ice: ICE, send: () => {}, onStream: () => {}, onState: () => {} });
    const pc = /** @type {FakePC} */ (/** @type {unknown} */ (peer.pc));
    pc.connectionState = "connected";
    peer.stateChanged();
    pc.ice("failed");
    assert.equal(pc.restarts, 1);
    mock.timers.tick(500);
    pc.ice("connected");
    mock.timers.tick(RESTART_WATCHDOG_MS * 2);
    assert.equal(pc.restarts, 1);
    peer.close();
  } finally {
    mock.timers.reset();
  }
});
