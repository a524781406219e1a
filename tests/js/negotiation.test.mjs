import { test } from "node:test";
import assert from "node:assert/strict";
import { Negotiator, isPolite } from "../../static/js/negotiation.js";

// A fake RTCPeerConnection with the JSEP signaling state machine, including the
// implicit rollback a remote offer causes in have-local-offer (as browsers do).
class FakePC {
  constructor(name) {
    this.name = name;
    this.signalingState = "stable";
    this.localDescription = null;
    this.remoteDescription = null;
    this.candidates = [];
    this.onnegotiationneeded = null;
    this.onicecandidate = null;
    this.version = 0;
  }
  async setLocalDescription(desc) {
    await Promise.resolve();
    if (desc) throw new Error("test uses implicit descriptions only");
    if (this.signalingState === "stable" || this.signalingState === "have-local-offer") {
      this.localDescription = { type: "offer", sdp: `${this.name}-offer-${++this.version}` };
      this.signalingState = "have-local-offer";
    } else if (this.signalingState === "have-remote-offer") {
      this.localDescription = { type: "answer", sdp: `${this.name}-answer-${++this.version}` };
      this.signalingState = "stable";
    } else throw new Error(`bad state ${this.signalingState}`);
  }
  async setRemoteDescription(desc) {
    await Promise.resolve();
    if (desc.type === "offer") {
      if (this.signalingState === "have-local-offer") this.rolledBack = (this.rolledBack ?? 0) + 1;
      this.remoteDescription = desc;
      this.signalingState = "have-remote-offer";
    } else {
      if (this.signalingState !== "have-local-offer") throw new Error(`answer in ${this.signalingState}`);
      this.remoteDescription = desc;
      this.signalingState = "stable";
    }
  }
  async addIceCandidate(c) {
    if (!this.remoteDescription) throw new Error("no remote description");
    this.candidates.push(c);
  }
}

/** Two negotiators wired through async "network" queues that we pump by hand. */
function pair({ aId = "a", bId = "b" } = {}) {
  const pcA = new FakePC("A"), pcB = new FakePC("B");
  const toA = [], toB = [];
  const errors = [];
  const a = new Negotiator(pcA, { polite: isPolite(aId, bId), send: (s) => toB.push(s), onError: (e) => errors.push(e) });
  const b = new Negotiator(pcB, { polite: isPolite(bId, aId), send: (s) => toA.push(s), onError: (e) => errors.push(e) });
  async function pump() {
    for (let i = 0; i < 50 && (toA.length || toB.length); i++) {
      const batchA = toA.splice(0), batchB = toB.splice(0);
      await Promise.all([...batchA.map((s) => a.receive(s)), ...batchB.map((s) => b.receive(s))]);
    }
  }
  return { pcA, pcB, a, b, pump, errors };
}

test("politeness is opposite on the two ends and decided by id order", () => {
  assert.equal(isPolite("abc", "abd"), true);
  assert.equal(isPolite("abd", "abc"), false);
});

test("a single offer is answered and both ends are stable", async () => {
  const { pcA, pcB, a, pump, errors } = pair();
  await a.negotiate();
  await pump();
  assert.deepEqual(errors, []);
  assert.equal(pcA.signalingState, "stable");
  assert.equal(pcB.signalingState, "stable");
  assert.equal(pcA.remoteDescription.type, "answer");
});

test("glare: both offer at once, the polite side yields, the call still converges", async () => {
  const { pcA, pcB, a, b, pump, errors } = pair({ aId: "a", bId: "b" }); // a is polite
  await Promise.all([a.negotiate(), b.negotiate()]);
  assert.equal(pcA.signalingState, "have-local-offer");
  assert.equal(pcB.signalingState, "have-local-offer");
  await pump();
  assert.deepEqual(errors, []);
  assert.equal(pcA.signalingState, "stable");
  assert.equal(pcB.signalingState, "stable");
  assert.equal(pcA.rolledBack, 1, "the polite side rolled back its offer");
  assert.ok(!pcB.rolledBack, "the impolite side kept its offer");
  assert.equal(pcB.remoteDescription.sdp.startsWith("A-answer"), true);
});

test("candidates that arrive before the offer are held, then applied in order", async () => {
  const pcB = new FakePC("B");
  const sent = [];
  const b = new Negotiator(pcB, { polite: true, send: (s) => sent.push(s) });
  await b.receive({ kind: "candidate", candidate: { candidate: "c1", sdpMid: "0" } });
  await b.receive({ kind: "candidate", candidate: { candidate: "c2", sdpMid: "0" } });
  assert.deepEqual(pcB.candidates, []);
  await b.receive({ kind: "description", description: { type: "offer", sdp: "x" } });
  assert.deepEqual(pcB.candidates.map((c) => c.candidate), ["c1", "c2"]);
  assert.equal(sent.at(-1).description.type, "answer");
  await b.receive({ kind: "candidate", candidate: null });
  assert.equal(pcB.candidates.length, 2, "end-of-candidates is a no-op");
});

test("the impolite side ignores a colliding offer and its candidates without error", async () => {
  const pcB = new FakePC("B");
  const errors = [];
  const b = new Negotiator(pcB, { polite: false, send: () => {}, onError: (e) => errors.push(e) });
  await b.negotiate();
  await b.receive({ kind: "description", description: { type: "offer", sdp: "theirs" } });
  await b.receive({ kind: "candidate", candidate: { candidate: "c-of-ignored-offer" } });
  assert.equal(pcB.signalingState, "have-local-offer");
  assert.deepEqual(errors, []);
});

test("an ICE restart renegotiates and marks the offer as a restart", async () => {
  const { a, pump, errors } = pair();
  const sent = [];
  const origSend = a.send;
  a.send = (s) => { sent.push(s); origSend(s); };
  await a.negotiate();
  await pump();
  a.restartIce(); // FakePC has no restartIce: falls back to negotiate()
  await new Promise((r) => setTimeout(r, 5));
  await pump();
  const offers = sent.filter((s) => s.kind === "description");
  assert.equal(offers.length, 2);
  assert.equal(offers[1].restart, true);
  assert.deepEqual(errors, []);
});

test("glare is counted on both ends", async () => {
  const { a, b, pump } = pair();
  await Promise.all([a.negotiate(), b.negotiate()]);
  await pump();
  assert.equal(a.collisions + b.collisions, 2);
});

test("a fresh connection says so on its first offer only", async () => {
  const pcA = new FakePC("A");
  const sent = [];
  const a = new Negotiator(pcA, { polite: false, fresh: true, send: (s) => sent.push(s) });
  await a.negotiate();
  await a.receive({ kind: "description", description: { type: "answer", sdp: "B-answer" } });
  await a.negotiate();
  const offers = sent.filter((s) => s.kind === "description");
  assert.deepEqual(offers.map((s) => s.fresh ?? false), [true, false]);
});

test("a fresh connection that answers first never marks a later offer", async () => {
  const pcB = new FakePC("B");
  const sent = [];
  const b = new Negotiator(pcB, { polite: true, fresh: true, send: (s) => sent.push(s) });
  await b.receive({ kind: "description", description: { type: "offer", sdp: "A-offer" } });
  await b.negotiate();
  assert.deepEqual(sent.map((s) => [s.description.type, s.fresh ?? false]), [["answer", false], ["offer", false]]);
});
