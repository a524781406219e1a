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
  createDataChannel(label, opts) { this.channel = { label, ...opts, readyState: "connecting" }; return this.channel; }
  close() { this.closed = true; this.connectionState = "closed"; }
}
globalThis.RTCPeerConnection = FakePC;
globalThis.MediaStream = class { addTrack() {} };

const { Peer, CONNECT_WATCHDOG_MS, POLITE_WATCHDOG_MS } = await import("../../static/js/peer.js");

/** "a" < "b": a peer of "a" is polite, one of "b" impolite. */
function make({ selfId = "a", remoteId = "b", onStuck } = {}) {
  const states = [];
  const peer = new Peer({
    selfId, remoteId, ice: null, send: () => {}, onStream: () => {}, onState: (s) => states.push(s), onStuck,
  });
  return { peer, pc: peer.pc, states };
}

test("the polite side's stuck link: unanswered offer rolled back, ICE restarted, again later", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { peer, pc } = make({ onStuck: () => assert.fail("the polite side never replaces") });
    pc.signalingState = "have-local-offer"; // our offer was never answered
    mock.timers.tick(POLITE_WATCHDOG_MS - 1);
    assert.equal(pc.restarts, 0);
    mock.timers.tick(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(pc.local, ["rollback"]);
    assert.equal(pc.restarts, 1);
    mock.timers.tick(POLITE_WATCHDOG_MS);
    await new Promise((r) => setImmediate(r));
    assert.equal(pc.restarts, 2, "keeps trying while not connected");
    assert.equal(peer.kicks, 2);
    peer.close();
  } finally {
    mock.timers.reset();
  }
});

test("the impolite side's stuck link asks to be replaced, sooner than the polite side acts", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    let stuck = 0;
    const { peer, pc } = make({ selfId: "b", remoteId: "a", onStuck: () => { stuck += 1; } });
    assert.ok(CONNECT_WATCHDOG_MS < POLITE_WATCHDOG_MS);
    mock.timers.tick(CONNECT_WATCHDOG_MS - 1);
    assert.equal(stuck, 0);
    mock.timers.tick(1);
    await new Promise((r) => setImmediate(r));
    assert.equal(stuck, 1);
    assert.equal(pc.restarts, 0, "replaced, not restarted");
    assert.deepEqual(pc.local, []);
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

test("every connection carries the negotiated media-control channel (id 0) from the start", async () => {
  const { Peer } = await import("../../static/js/peer.js");
  const p = new Peer({ selfId: "a", remoteId: "b", ice: null, send() {}, onStream() {}, onState() {} });
  assert.deepEqual({ label: p.pc.channel.label, negotiated: p.pc.channel.negotiated, id: p.pc.channel.id },
    { label: "media-control", negotiated: true, id: 0 });
  assert.equal(p.sendControl("{}"), false, "not open yet: nothing sent");
  p.close();
});

test("stats() reads the sender's side: packets and bytes sent, what the peer reports lost, the available bitrate", async () => {
  const { Peer } = await import("../../static/js/peer.js");
  const p = new Peer({ selfId: "a", remoteId: "b", ice: null, send() {}, onStream() {}, onState() {} });
  const report = new Map([
    ["o1", { type: "outbound-rtp", kind: "video", packetsSent: 900, bytesSent: 800_000, qualityLimitationReason: "bandwidth" }],
    ["o2", { type: "outbound-rtp", kind: "audio", packetsSent: 200, bytesSent: 20_000 }],
    ["r1", { type: "remote-inbound-rtp", kind: "video", packetsLost: 30, fractionLost: 0.33 }],
    ["r2", { type: "remote-inbound-rtp", kind: "audio", packetsLost: 5, fractionLost: 0 }],
    ["t", { type: "transport", selectedCandidatePairId: "cp" }],
    ["cp", { type: "candidate-pair", currentRoundTripTime: 0.15, availableOutgoingBitrate: 348_000, localCandidateId: "lc" }],
    ["lc", { type: "local-candidate", candidateType: "relay" }],
  ]);
  p.pc.getStats = async () => report;
  p.pc.iceConnectionState = "connected";
  try {
    const out = await p.stats();
    const pick = ({ packetsSent, bytesSent, packetsLost, fractionLost, mark }) => ({ packetsSent, bytesSent, packetsLost, fractionLost, mark });
    assert.deepEqual({ video: pick(out.sent.video), audio: pick(out.sent.audio) }, {
      video: { packetsSent: 900, bytesSent: 800_000, packetsLost: 30, fractionLost: 0.33, mark: { sent: 900, lost: 30 } },
      audio: { packetsSent: 200, bytesSent: 20_000, packetsLost: 5, fractionLost: 0, mark: { sent: 200, lost: 5 } },
    });
    assert.deepEqual([out.bwOut, out.qlr, out.rtt, out.relay], [348_000, "bandwidth", 0.15, true]);
    // The next reading goes on from this one: a new video report gives the loss between the two.
    report.set("o1", { ...report.get("o1"), packetsSent: 1000 });
    report.set("r1", { ...report.get("r1"), packetsLost: 35, timestamp: 2 });
    assert.deepEqual((await p.stats()).sent.video.span, { sent: 100, lost: 5 });
  } finally {
    p.close();
  }
});

test("stats(): a link silent for SILENT_MS while ICE says connected is an outage (its loss only marks)", async () => {
  const { Peer, SILENT_MS } = await import("../../static/js/peer.js");
  mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
  const p = new Peer({ selfId: "a", remoteId: "b", ice: null, send() {}, onStream() {}, onState() {} });
  const report = new Map([
    ["o", { type: "outbound-rtp", kind: "video", packetsSent: 100, bytesSent: 100_000 }],
    ["r", { type: "remote-inbound-rtp", kind: "video", packetsLost: 0, fractionLost: 0, timestamp: 1 }],
    ["i", { type: "inbound-rtp", kind: "audio", packetsReceived: 50 }],
    ["t", { type: "transport", bytesReceived: 9000, selectedCandidatePairId: "cp" }],
    ["cp", { id: "cp", type: "candidate-pair", requestsReceived: 3, responsesReceived: 3 }],
  ]);
  const set = (id, fields) => report.set(id, { ...report.get(id), ...fields });
  p.pc.getStats = async () => report;
  p.pc.iceConnectionState = "connected";
  try {
    assert.equal((await p.stats()).silent, false, "first reading");
    mock.timers.tick(SILENT_MS - 1);
    set("o", { packetsSent: 150 });
    assert.equal((await p.stats()).silent, false, "not yet");
    mock.timers.tick(1);
    set("o", { packetsSent: 200 }); // we go on sending; nothing comes back
    assert.equal((await p.stats()).silent, true, "nothing from the peer for SILENT_MS");
    mock.timers.tick(2000);
    set("o", { packetsSent: 400 });
    set("i", { packetsReceived: 51 }); // the path is back: the first report holds the blackout's losses
    set("r", { packetsLost: 190, timestamp: 2 });
    const back = await p.stats();
    assert.equal(back.silent, false);
    assert.equal(back.sent.video.span, null, "the blackout's losses are not a span");
    mock.timers.tick(2000);
    set("o", { packetsSent: 500 });
    set("i", { packetsReceived: 150 });
    set("r", { packetsLost: 195, timestamp: 3 });
    assert.deepEqual((await p.stats()).sent.video.span, { sent: 100, lost: 5 }, "then spans again");
  } finally {
    p.close();
    mock.timers.reset();
  }
});
