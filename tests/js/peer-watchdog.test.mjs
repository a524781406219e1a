import { test, mock } from "node:test";
import assert from "node:assert/strict";

class FakePC {
  constructor() {
    this.connectionState = "new";
    this.iceConnectionState = "new";
    this.signalingState = "stable";
    this.local = [];
    this.restarts = 0;
    this.closed = false;
  }
  async setLocalDescription(description) {
    this.local.push(description?.type ?? "auto");
    if (description?.type === "rollback") this.signalingState = "stable";
  }
  restartIce() { this.restarts += 1; }
  close() { this.closed = true; this.connectionState = "closed"; }
}
globalThis.RTCPeerConnection = FakePC;
globalThis.MediaStream = class { addTrack() {} };

const { Peer, CONNECT_WATCHDOG_MS } = await import("../../static/js/peer.js");

function make() {
  const states = [];
  const peer = new Peer({
    selfId: "a", remoteId: "b", ice: null, send: () => {}, onStream: () => {}, onState: (s) => states.push(s),
  });
  return { peer, pc: peer.pc, states };
}

test("a link that never connects is kicked: unanswered offer rolled back, ICE restarted, again later", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { peer, pc } = make();
    pc.signalingState = "have-local-offer"; // our offer was never answered
    mock.timers.tick(CONNECT_WATCHDOG_MS - 1);
    assert.equal(pc.restarts, 0);
    mock.timers.tick(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(pc.local, ["rollback"]);
    assert.equal(pc.restarts, 1);
    mock.timers.tick(CONNECT_WATCHDOG_MS);
    await new Promise((r) => setImmediate(r));
    assert.equal(pc.restarts, 2, "keeps trying while not connected");
    assert.equal(peer.kicks, 2);
    peer.close();
  } finally {
    mock.timers.reset();
  }
});

test("a connected link is left alone, and a closed one stops the watchdog", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { peer, pc, states } = make();
    pc.connectionState = "connected";
    peer.stateChanged();
    mock.timers.tick(CONNECT_WATCHDOG_MS * 3);
    await new Promise((r) => setImmediate(r));
    assert.equal(pc.restarts, 0);
    assert.deepEqual(states, ["connected"]);
    const other = make();
    other.peer.close();
    mock.timers.tick(CONNECT_WATCHDOG_MS * 3);
    await new Promise((r) => setImmediate(r));
    assert.equal(other.pc.restarts, 0);
  } finally {
    mock.timers.reset();
  }
});
