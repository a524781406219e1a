import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { heardKey, sampleFrom, selectedPair, sentByKind, sentLoss } from "../../static/js/stats-sample.js";
import { senderView } from "../../static/js/call-quality.js";
import { callStats } from "../../static/js/protocol.js";

// Two getStats() reports of one Chromium connection, 2 s apart
// (recorded by tests/js/fixtures/record_stats.py).
const recorded = JSON.parse(readFileSync(new URL("./fixtures/stats-chromium.json", import.meta.url), "utf8"));
/** @param {object[]} entries @param {(s: any) => any} [edit] */
const report = (entries, edit = (s) => s) =>
  new Map(entries.map((s) => structuredClone(s)).map((s) => [s.id, edit(s) ?? s]));
const prev = () => report(recorded.first);
const cur = (edit) => report(recorded.second, edit);
const byType = (entries, type, kind) => entries.find((s) => s.type === type && (!kind || s.kind === kind));

test("a recorded Chromium interval gives every field of the sample", () => {
  const s = sampleFrom(prev(), cur(), { peer: "bob", level: "full", pred: 0.1, events: ["step:full:recovered"] });
  const keys = ["peer", "t", "rtt", "loss_in", "loss_out", "jitter", "bw_out", "send_kbps", "recv_kbps", "qlr",
    "fps_in", "decoded", "dropped", "freezes", "freeze_ms", "conceal", "relay", "level", "pred", "events"];
  assert.deepEqual(Object.keys(s).sort(), [...keys].sort());
  assert.equal(s.peer, "bob");
  assert.equal(s.relay, false, "host candidates on loopback");
  assert.equal(s.loss_in, 0);
  assert.equal(s.loss_out, 0);
  assert.equal(s.qlr, "none");
  assert.equal(s.level, "full");
  assert.deepEqual(s.events, ["step:full:recovered"]);
  const pair = selectedPair(cur());
  assert.equal(s.rtt, pair.currentRoundTripTime * 1000);
  assert.equal(s.bw_out, Math.round(pair.availableOutgoingBitrate / 100) / 10);
  // Interval figures are differences over the ~2 s between the reports.
  const v0 = byType(recorded.first, "inbound-rtp", "video");
  const v1 = byType(recorded.second, "inbound-rtp", "video");
  assert.equal(s.decoded, v1.framesDecoded - v0.framesDecoded);
  const seconds = (v1.timestamp - v0.timestamp) / 1000;
  assert.ok(Math.abs(s.fps_in - s.decoded / seconds) < 0.01, `${s.fps_in} fps`);
  assert.ok(s.fps_in > 5 && s.fps_in < 61, `${s.fps_in} fps`);
  assert.ok(s.send_kbps > 20 && s.recv_kbps > 20, `${s.send_kbps} / ${s.recv_kbps} kbit/s`);
  assert.ok(s.conceal >= 0 && s.conceal <= 1);
  assert.equal(s.freezes, v1.freezeCount - v0.freezeCount);
  assert.equal(s.t, Math.round(Math.max(...recorded.second.map((e) => e.timestamp))));
  // What the server accepts: JSON numbers, no NaN.
  assert.doesNotMatch(JSON.stringify(s), /NaN|Infinity/);
});

test("the first sample has no interval figures, only the instantaneous ones", () => {
  const s = sampleFrom(null, cur(), { peer: "bob", now: 1733600000123 });
  assert.equal(s.t, 1733600000123);
  for (const k of ["loss_in", "send_kbps", "recv_kbps", "fps_in", "decoded", "dropped", "freezes", "freeze_ms", "conceal"]) {
    assert.equal(s[k], null, k);
  }
  assert.notEqual(s.rtt, null);
  assert.equal(s.level, null);
  assert.equal(s.pred, null);
});

test("loss in is what went missing of what this side should have received, all kinds", () => {
  const a0 = byType(recorded.first, "inbound-rtp", "audio");
  const v0 = byType(recorded.first, "inbound-rtp", "video");
  const s = sampleFrom(prev(), cur((e) => {
    if (e.type !== "inbound-rtp") return e;
    const was = e.kind === "audio" ? a0 : v0;
    return { ...e, packetsReceived: was.packetsReceived + 90, packetsLost: was.packetsLost + 10 };
  }), { peer: "bob" });
  assert.equal(s.loss_in, 0.1); // 20 lost of 200 over the interval
});

test("loss out is the ladder's loss: lost over sent across the interval, not a report's fractionLost", () => {
  const o0 = (kind) => byType(recorded.first, "outbound-rtp", kind);
  const r0 = (kind) => byType(recorded.first, "remote-inbound-rtp", kind);
  // 100 audio and 300 video packets sent in the interval; the peer reports 2 and 18 of
  // them lost, while its last reports say 0.05 and 0.25 (one report's burst).
  const sent = { audio: 100, video: 300 };
  const lost = { audio: 2, video: 18 };
  const edit = (e) => {
    if (e.type === "outbound-rtp") return { ...e, packetsSent: o0(e.kind).packetsSent + sent[e.kind] };
    if (e.type === "remote-inbound-rtp") {
      return { ...e, packetsLost: r0(e.kind).packetsLost + lost[e.kind], fractionLost: e.kind === "video" ? 0.25 : 0.05 };
    }
    return e;
  };
  const s = sampleFrom(prev(), cur(edit), { peer: "bob" });
  assert.equal(s.loss_out, 0.05); // 20 of 400
  // The same number the send ladder steps on (one function: sentLoss).
  const reading = (sent, t) => ({ t, rtt: null, bwOut: null, qlr: null, sent });
  const before = sentByKind(prev());
  assert.equal(senderView(reading(before, 0), reading(sentByKind(cur(edit), before), 2000)).loss_out, s.loss_out);
  // Video paused (its counters stand still, its last report stays at 0.25): audio alone counts.
  const paused = (e) => (e.type === "outbound-rtp" && e.kind === "video" ? { ...e, packetsSent: o0("video").packetsSent }
    : e.type === "remote-inbound-rtp" && e.kind === "video" ? { ...e, packetsLost: r0("video").packetsLost } : edit(e));
  assert.equal(sampleFrom(prev(), cur(paused), { peer: "bob" }).loss_out, 0.02);
  // The first sample has no interval: the worst last report stands in.
  assert.equal(sampleFrom(null, cur(edit), { peer: "bob" }).loss_out, 0.25);
});

test("sentLoss: kinds without a previous reading or without lost counts are left out", () => {
  const k = (packetsSent, packetsLost, fractionLost = null, span = null) =>
    ({ packetsSent, bytesSent: 0, packetsLost, fractionLost, rr: "", mark: null, span });
  assert.equal(sentLoss(null, {}), null);
  assert.equal(sentLoss({ audio: k(10, 0) }, { audio: k(10, 0, null, { sent: 10, lost: 0 }) }), null, "nothing sent in the interval");
  assert.equal(sentLoss({ video: k(10, null) }, { video: k(110, null, 0.4) }), null, "no lost counts");
  assert.equal(sentLoss({ audio: k(0, 0) }, { audio: k(50, 5, null, { sent: 50, lost: 5 }), video: k(100, 0, 0.5) }), 0.1,
    "the new video stream waits");
  assert.equal(sentLoss({ audio: k(0, 0) }, { audio: k(10, 30, null, { sent: 10, lost: 30 }) }), 1, "clamped");
});

test("sentLoss counts the loss between two receiver reports, not one reading's jump", () => {
  // Audio reports every ~5 s, video every ~1 s; readings every 0.5 s; 5 % lost of each.
  const entries = (t, audioLost, audioAt, videoLost, videoAt) => new Map([
    ["oa", { id: "oa", type: "outbound-rtp", kind: "audio", packetsSent: 50 * t, bytesSent: 0 }],
    ["ov", { id: "ov", type: "outbound-rtp", kind: "video", packetsSent: 100 * t, bytesSent: 0 }],
    ["ra", { id: "ra", type: "remote-inbound-rtp", kind: "audio", packetsLost: audioLost, timestamp: audioAt }],
    ["rv", { id: "rv", type: "remote-inbound-rtp", kind: "video", packetsLost: videoLost, timestamp: videoAt }],
  ]);
  let sent = null;
  const losses = [];
  for (let i = 1; i <= 24; i += 1) {
    const t = i / 2;
    const audioAt = Math.floor(t / 5) * 5; // the last audio report's time
    const videoAt = Math.floor(t);
    const next = sentByKind(entries(t, Math.round(50 * audioAt * 0.05), audioAt, Math.round(100 * videoAt * 0.05), videoAt), sent);
    if (sent) losses.push(sentLoss(sent, next));
    sent = next;
  }
  assert.ok(losses.every((x) => x !== null), `${losses}`);
  // Lost over sent per reading read 0.25-0.5 when the audio report landed; spans read 5 %
  // once a kind has had two reports (the first mark is the first reading's, after its report).
  for (const x of losses.slice(2)) assert.ok(Math.abs(x - 0.05) < 0.011, `${losses}`);
  const naive = (i) => sentLoss(sentByKind(entries(i / 2, 0, 0, 0, 0)), sentByKind(entries(i / 2 + 0.5, 12, 5, 25, 5),
    sentByKind(entries(i / 2, 0, 0, 0, 0))));
  assert.ok(naive(9) > 0.2, "two readings alone: one interval's sent against a report's whole loss");
});

test("a relay candidate on either end marks the link relayed", () => {
  const pair = selectedPair(cur());
  const s = sampleFrom(prev(), cur((e) => (e.id === pair.remoteCandidateId ? { ...e, candidateType: "relay" } : e)),
    { peer: "bob" });
  assert.equal(s.relay, true);
});

test("without a selected pair the RTT comes from the peer's receiver reports", () => {
  const s = sampleFrom(prev(), cur((e) => {
    if (e.type === "transport") return { ...e, selectedCandidatePairId: undefined };
    if (e.type === "candidate-pair") return { ...e, nominated: false };
    if (e.type === "remote-inbound-rtp") return { ...e, roundTripTime: 0.152 };
    return e;
  }), { peer: "bob" });
  assert.equal(s.rtt, 152);
  assert.equal(s.bw_out, null);
  assert.equal(s.relay, null, "unknown, not false");
});

test("a counter that went backwards (a new connection) is left out, not negative", () => {
  const s = sampleFrom(prev(), cur((e) => (e.type === "inbound-rtp" && e.kind === "video"
    ? { ...e, framesDecoded: 3, packetsReceived: 5 } : e)), { peer: "bob" });
  assert.equal(s.decoded, null, "no video entry ran over the interval");
  assert.ok(s.loss_in === null || s.loss_in >= 0);
  assert.ok(s.recv_kbps === null || s.recv_kbps >= 0);
});

test("freezes and freeze time are interval differences, in ms", () => {
  const v0 = byType(recorded.first, "inbound-rtp", "video");
  const s = sampleFrom(prev(), cur((e) => (e.type === "inbound-rtp" && e.kind === "video"
    ? { ...e, freezeCount: (v0.freezeCount ?? 0) + 2, totalFreezesDuration: (v0.totalFreezesDuration ?? 0) + 1.25 } : e)),
  { peer: "bob" });
  assert.equal(s.freezes, 2);
  assert.equal(s.freeze_ms, 1250);
});

test("values the server would refuse never leave the client", () => {
  const s = sampleFrom(prev(), cur((e) => (e.type === "outbound-rtp" ? { ...e, qualityLimitationReason: "weather" } : e)), {
    peer: "bob", level: "audio-only", pred: 7, events: ["ok:1", "not ok", ...Array.from({ length: 12 }, (_, i) => `e${i}`)],
  });
  assert.equal(s.qlr, null);
  assert.equal(s.level, null);
  assert.equal(s.pred, 1);
  assert.equal(s.events.length, 8);
  assert.ok(!s.events.includes("not ok"));
});

test("the frame carries at most 16 samples", () => {
  const samples = Array.from({ length: 20 }, (_, i) => sampleFrom(null, cur(), { peer: `p${i}` }));
  const frame = callStats(samples);
  assert.equal(frame.type, "call.stats");
  assert.equal(frame.samples.length, 16);
});

test("sentByKind: what is lost while the link is down is not a span; the first report after it only marks", () => {
  const at = (sent, lost, t) => new Map([
    ["ov", { id: "ov", type: "outbound-rtp", kind: "video", packetsSent: sent, bytesSent: 0 }],
    ["rv", { id: "rv", type: "remote-inbound-rtp", kind: "video", packetsLost: lost, timestamp: t }],
  ]);
  let s = sentByKind(at(100, 0, 1));
  s = sentByKind(at(200, 5, 2), s);
  assert.deepEqual(s.video.span, { sent: 100, lost: 5 });
  s = sentByKind(at(300, 5, 2), s, { outage: true }); // down: the last report stands, no span
  assert.equal(s.video.span, null);
  s = sentByKind(at(900, 5, 2), s, { outage: true });
  s = sentByKind(at(1000, 600, 10), s); // back: the first report holds the outage's losses
  assert.equal(s.video.span, null);
  assert.deepEqual(s.video.mark, { sent: 1000, lost: 600 });
  s = sentByKind(at(1100, 605, 11), s);
  assert.deepEqual(s.video.span, { sent: 100, lost: 5 }, "then spans again");
});

test("heardKey changes with anything more from the peer: RTP, transport bytes, checks on the selected pair only", () => {
  const base = heardKey(cur());
  assert.notEqual(base, "");
  assert.equal(heardKey(cur()), base, "the same report: nothing new");
  const pairId = byType(recorded.second, "transport").selectedCandidatePairId;
  const bump = (pick, field) => heardKey(cur((s) => (pick(s) ? { ...s, [field]: s[field] + 1 } : s)));
  assert.notEqual(bump((s) => s.type === "inbound-rtp" && s.kind === "audio", "packetsReceived"), base, "an audio packet");
  assert.notEqual(bump((s) => s.type === "transport", "bytesReceived"), base, "RTCP or the data channel");
  assert.notEqual(bump((s) => s.id === pairId, "requestsReceived"), base, "an ICE check on the selected pair");
  assert.notEqual(bump((s) => s.id === pairId, "responsesReceived"), base, "an answered check on the selected pair");
  // A dead selected pair beside live checks on another (TURN's, say) is still dead for media.
  assert.equal(bump((s) => s.type === "candidate-pair" && s.id !== pairId, "requestsReceived"), base);
  assert.equal(heardKey(new Map([["o", { id: "o", type: "outbound-rtp", kind: "video", packetsSent: 5 }]])), "",
    "no counter of what comes in: nothing tells");
});
