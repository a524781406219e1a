// The send ladder decides from the sender's own view of a link (what the peer reports
// losing of what we send, RTT, the available outgoing bitrate, the encoder's limit).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { SendLadder, SEND_LEVELS, LEVEL_ENCODINGS, LADDER_DEFAULTS, senderView } from "../../static/js/call-quality.js";

const GOOD = { rtt: 40, loss_out: 0, bw_out: 2000, send_kbps: 1200, qlr: "none" };

/** Feeds samples 2 s apart from `t0`, returns the steps taken ("level:reason"). */
function run(ladder, samples, t0 = 0) {
  const steps = [];
  samples.forEach((s, i) => {
    const step = ladder.observe({ ...GOOD, ...s, t: t0 + i * 2000 });
    if (step) steps.push(`${step.level}:${step.reason}`);
  });
  return steps;
}
const times = (n, s) => Array.from({ length: n }, () => s);

test("levels are full, reduced, low, audio; each has its encoding and a falling need", () => {
  assert.deepEqual(SEND_LEVELS, ["full", "reduced", "low", "audio"]);
  const needs = SEND_LEVELS.map((l) => LEVEL_ENCODINGS[l].need);
  assert.deepEqual([...needs].sort((a, b) => b - a), needs);
  assert.ok(LEVEL_ENCODINGS.reduced.scaleResolutionDownBy > 1 && LEVEL_ENCODINGS.low.maxFramerate < 30);
});

test("one lossy sample does not step down; sustained loss steps down one level at a time to audio", () => {
  const l = new SendLadder();
  assert.deepEqual(run(l, [{ loss_out: 0.15 }, GOOD]), []);
  assert.deepEqual(run(l, times(6, { loss_out: 0.15 }), 4000), ["reduced:loss", "low:loss", "audio:loss"]);
  assert.deepEqual(run(l, times(2, { loss_out: 0.5 }), 20000), [], "audio is the floor");
  assert.equal(l.level, "audio");
});

test("severe loss steps down at once; sustained RTT steps down", () => {
  const a = new SendLadder();
  assert.deepEqual(run(a, [{ loss_out: 0.4 }]), ["reduced:loss"]);
  const b = new SendLadder();
  assert.deepEqual(run(b, [{ rtt: 800 }, { rtt: 800 }]), ["reduced:rtt"]);
});

test("the loss of what we receive is not an input: only loss_out moves the ladder", () => {
  const l = new SendLadder();
  assert.deepEqual(run(l, times(10, { loss_in: 0.5, jitter: 200, freezes: 3 })), []);
  assert.equal(l.level, "full");
});

test("available bitrate below the level's need jumps to the level that fits, after the warm-up", () => {
  const l = new SendLadder();
  const capped = { bw_out: 150, qlr: "bandwidth" };
  assert.deepEqual(run(l, times(3, capped)), [], "the estimate ramps up during the first 6 s");
  assert.deepEqual(run(l, [capped], 6000), ["low:bandwidth"]);
  const m = new SendLadder();
  run(m, times(4, GOOD));
  assert.deepEqual(run(m, [{ bw_out: 300, qlr: "bandwidth" }], 8000), ["reduced:bandwidth"]);
  // At reduced the estimate, not the level, holds what we send (70 kbit/s, under the
  // ~145 reduced sends): a squeeze; not in the sample right after the step (settleMs).
  assert.deepEqual(run(m, [{ bw_out: 60, send_kbps: 70, qlr: "bandwidth" }], 10000), []);
  // Never past low on this rule: audio only takes trouble seen (loss, RTT, the drop rule).
  assert.deepEqual(run(m, [{ bw_out: 60, send_kbps: 70, qlr: "bandwidth" }], 12000), ["low:bandwidth"]);
  assert.deepEqual(run(m, times(4, { bw_out: 60, send_kbps: 50, qlr: "bandwidth" }), 14000), []);
  assert.equal(m.level, "low");
});

test("a cap is seen from what we send, before the encoder reports being limited (the lab's 300 kbit/s cap)", () => {
  const l = new SendLadder();
  run(l, times(10, GOOD));
  // The estimate fell from 3 Mbit/s to 348 kbit/s while we still sent 1.2 Mbit/s; qlr said "none".
  assert.deepEqual(run(l, [{ bw_out: 348, send_kbps: 1225, qlr: "none" }], 20000), ["reduced:bandwidth"]);
});

test("an abrupt cap: the estimate falling far under what we sent steps down on that sample, once", () => {
  const l = new SendLadder();
  run(l, times(10, { bw_out: 3500, send_kbps: 1300 }));
  // The lab's 300 kbit/s cap, 0.9 s in: Chrome's estimate 607 kbit/s, over the need of
  // full (400), but half of the 1.2 Mbit/s we sent; RTT not up yet, no loss reported yet.
  assert.deepEqual(run(l, [{ bw_out: 607, send_kbps: 1231, rtt: 1 }], 20000), ["reduced:bandwidth"]);
  // The next sample still counts what full sent into the cap (its loss reports arrive
  // a report late): no second step; then reduced fits under the cap and stays.
  assert.deepEqual(run(l, [{ bw_out: 298, send_kbps: 759, rtt: 186, loss_out: 0.45 }], 22000), []);
  const capped = [{ bw_out: 257, send_kbps: 240 }, { bw_out: 331, send_kbps: 235 }, { bw_out: 273, send_kbps: 245 }];
  assert.deepEqual(run(l, times(2, capped).flat(), 24000), []);
  assert.equal(l.level, "reduced");
  // Two holds after the step, one probe (the estimate cannot show whether the cap is
  // still there); full does not fit, and the next sample takes it back; the hold doubles.
  const steps = run(l, [{ bw_out: 331, send_kbps: 235 }, { bw_out: 290, send_kbps: 420 }, ...times(6, capped[0])], 36000);
  assert.deepEqual(steps, ["full:recovered", "reduced:bandwidth"]);
  assert.equal(l.hold, 16000);
});

test("the estimate under what we send but still high (a cap full fits in) does not step down", () => {
  const l = new SendLadder();
  // congested-wifi's 1.5 Mbit/s phase: Chrome sent 2.5 Mbit/s against an estimate of 1,066.
  assert.deepEqual(run(l, times(10, { bw_out: 1066, send_kbps: 2545 })), []);
});

test("5 % random loss at 150 ms RTT: Chrome's estimate falls, but not under what we send; no step", () => {
  const l = new SendLadder();
  run(l, times(10, { bw_out: 3700, send_kbps: 1300 }));
  // From the lab (loss5-rtt150): RTT 2 -> 159 ms at once, the estimate 3.7 Mbit/s ->
  // 1.55 within 2 s; loss of what we send (packets lost / sent) 3-8 %.
  const lossy = [0.05, 0.04, 0.08, 0.06, 0.03, 0.05, 0.07, 0.05, 0.04, 0.06, 0.08, 0.05, 0.03, 0.05, 0.06, 0.04, 0.07, 0.05, 0.05, 0.04]
    .map((loss_out, i) => ({ loss_out, rtt: 153 + (i % 4), bw_out: 1550 + 40 * i, send_kbps: 1250 + (i % 3) * 60 }));
  assert.deepEqual(run(l, lossy, 20000), []);
  assert.equal(l.level, "full");
});

test("reduced with audio and headers fits under a 300 kbit/s cap; each level under the need of the one above", () => {
  const audioKbps = 60; // Opus ~32-40 kbit/s plus RTP/UDP/TURN headers at 50 packets/s
  // + RTP/RTCP; under loss Chromium adds FEC and retransmissions on top of maxBitrate
  // (the lab: reduced at 160 kbit/s sent 300-357 kbit/s while the cap's loss lasted).
  const total = (level, protection = 0) => (LEVEL_ENCODINGS[level].maxBitrate ?? 0) / 1000 * (1.05 + protection) + audioKbps;
  assert.ok(total("reduced", 1) <= 300, `reduced sends up to ~${total("reduced", 1)} kbit/s`);
  assert.ok(total("reduced") >= 0.8 * LEVEL_ENCODINGS.reduced.need, "a level's need is about what it sends");
  // A capped sender at reduced must not read the cap's estimate (~250-340 kbit/s) as room for full.
  assert.ok(LEVEL_ENCODINGS.full.need > 340);
  assert.ok(total("low") < LEVEL_ENCODINGS.reduced.need);
});

/** The bandwidth rules replayed on a lab recording (quality/recordings): per sender, its steps as "level@phase+s". */
function replay(name) {
  const url = new URL(`../../quality/recordings/${name}.jsonl.gz`, import.meta.url);
  const [head, ...samples] = gunzipSync(readFileSync(url)).toString().trim().split("\n").map((l) => JSON.parse(l));
  const bySender = new Map();
  for (const s of samples) bySender.set(s.from_peer, [...(bySender.get(s.from_peer) ?? []), s]);
  return [...bySender.values()].map((rows) => {
    const l = new SendLadder();
    const steps = [];
    for (const r of rows) {
      // Their loss_out is an older, noisier measure than senderView's: only the
      // estimate, the send rate, RTT and qlr are replayed.
      const step = l.observe({ t: r.t, rtt: r.rtt, loss_out: null, bw_out: r.bw_out, send_kbps: r.send_kbps, qlr: r.qlr });
      const phase = head.phases.filter((p) => p.start_ms <= r.t).at(-1);
      if (step) steps.push({ level: step.level, phase: phase.label, s: (r.t - phase.start_ms) / 1000 });
    }
    return steps;
  });
}

test("replayed on lab recordings: a step within 4 s of a cap, none for loss plus delay or an outage", () => {
  for (const [name, capLabel] of [["pred-c--cap300--off", "300 kbit/s up"], ["pred-d--3g--off", "3g"], ["pred-e--collapse--off", "300 kbit/s"]]) {
    const senders = replay(name);
    const first = senders.map((steps) => steps.find((s) => s.phase === capLabel)).filter(Boolean);
    assert.ok(first.length >= 1, `${name}: no step under the cap`);
    for (const s of first) assert.ok(s.s <= 4 - 0.5 && s.level === "reduced", `${name}: ${JSON.stringify(s)}`);
  }
  for (const name of ["pred-d--loss5-rtt150--off", "pred-d--tunnel--off", "pred-e--tunnel--off"]) {
    assert.deepEqual(replay(name), [[], []], name);
  }
});

test("an estimate that follows our own lowered rate is no squeeze: low keeps its video on a path with room", () => {
  const l = new SendLadder();
  run(l, times(10, { bw_out: 2000, send_kbps: 1250 }));
  run(l, [{ loss_out: 0.4 }, { loss_out: 0.4 }], 20000); // reduced, then (settled) low
  l.force("low", 24000); l.force(null, 24000);
  assert.equal(l.level, "low");
  // The lab's wifi-fade at 700 kbit/s (pred-q): low sends ~90-120 kbit/s, all it may, and
  // Chrome's estimate falls from 558 to about that, under low's need (100). No loss, RTT
  // of the path's own delay, qlr none.
  const following = [{ bw_out: 96, send_kbps: 117 }, { bw_out: 102, send_kbps: 95 }, { bw_out: 84, send_kbps: 89 },
    { bw_out: 76, send_kbps: 89 }, { bw_out: 93, send_kbps: 97, qlr: "bandwidth" }, { bw_out: 119, send_kbps: 119 }]
    .map((s, i) => ({ ...s, rtt: 75 + 10 * i, loss_out: 0.02 + 0.01 * (i % 2) }));
  assert.deepEqual(run(l, following, 26000), []);
  assert.equal(l.level, "low");
  // The old rule (no bound on the level's own rate, down to audio: ownShare Infinity,
  // needFloor audio) stepped to audio on the first.
  const old = new SendLadder({ ownShare: Infinity, needFloor: "audio" });
  run(old, times(10, { bw_out: 2000, send_kbps: 1250 }));
  old.force("low", 20000); old.force(null, 20000);
  assert.deepEqual(run(old, following.slice(0, 1), 24000), ["audio:bandwidth"]);
  // The same at reduced (cell-congestion at 1.2 Mbit/s: estimate 1,205 -> 142 with 155 sent).
  const r = new SendLadder();
  run(r, times(10, { bw_out: 2000, send_kbps: 1250 }));
  r.force("reduced", 20000); r.force(null, 20000);
  assert.deepEqual(run(r, times(6, { bw_out: 142, send_kbps: 155, rtt: 62, loss_out: 0 }), 22000), []);
});

test("the estimate's dip in the sample right after a step down is not read as a squeeze", () => {
  // The lab's cell-congestion at 900 kbit/s (ladder3-p, 2026-12-08): 2 s after a predicted
  // step from reduced to low, Chrome's estimate read 61 kbit/s with 70 sent over the
  // interval (the encoder ramping down from reduced's ~150); it stepped to audio only.
  // The same in pred-s (estimate 63 with 67 sent, 2 s after the step). A replay of those
  // recordings cannot show it: the replayed ladder steps to low at another sample.
  const l = new SendLadder();
  run(l, times(10, { bw_out: 1130, send_kbps: 1250 }));
  l.force("reduced", 20000); l.force(null, 20000);
  run(l, times(2, { bw_out: 1130, send_kbps: 150 }), 30000);
  assert.equal(l.observePrediction(0.8, 34000)?.level, "low");
  assert.deepEqual(run(l, [{ bw_out: 61, send_kbps: 66, rtt: 139 }, { bw_out: 95, send_kbps: 90, rtt: 139 }], 36000), []);
  assert.equal(l.level, "low");
});

test("a real squeeze at low still steps to audio only: loss, RTT, the estimate far under what we send", () => {
  const atLow = () => {
    const l = new SendLadder();
    run(l, times(10, { bw_out: 2000, send_kbps: 1250 }));
    l.force("low", 20000); l.force(null, 20000);
    return l;
  };
  // A path under low's ~100 kbit/s: what low sends overflows the queue.
  // (From 24 s: not in the first 3 s after the step to low, settleMs.)
  assert.deepEqual(run(atLow(), [{ bw_out: 90, send_kbps: 110, loss_out: 0.35 }], 24000), ["audio:loss"]);
  assert.deepEqual(run(atLow(), times(2, { bw_out: 90, send_kbps: 110, loss_out: 0.12 }), 24000), ["audio:loss"]);
  assert.deepEqual(run(atLow(), times(2, { bw_out: 90, send_kbps: 110, rtt: 650 }), 24000), ["audio:rtt"]);
  assert.deepEqual(run(atLow(), [{ bw_out: 55, send_kbps: 110 }], 24000), ["audio:bandwidth"], "the drop rule");
  // The estimate under low's need with about that sent is not enough on its own.
  assert.deepEqual(run(atLow(), times(4, { bw_out: 70, send_kbps: 60, qlr: "bandwidth" }), 24000), []);
});

/** Rows of a recording per sender, oldest first, and its phases. */
function recording(name) {
  const url = new URL(`../../quality/recordings/${name}.jsonl.gz`, import.meta.url);
  const [head, ...samples] = gunzipSync(readFileSync(url)).toString().trim().split("\n").map((l) => JSON.parse(l));
  const bySender = new Map();
  for (const s of samples) bySender.set(s.from_peer, [...(bySender.get(s.from_peer) ?? []), s]);
  return { head, senders: [...bySender.values()].map((rows) => rows.sort((a, b) => a.t - b.t)) };
}

test("replayed on pred-q's predictive runs: no step to audio only while the recorded sender still sent video", () => {
  // Each sample's `level` is what the sender sent when it was taken. Every step to audio in
  // these runs was "under the level's need" at low (bench/RESULTS.md, pred-q), 3 of 4 on a
  // path carrying 700-900 kbit/s. Replayed as the browser runs it (observe, then the recorded
  // prediction), with the recorded loss (pred-q has the between-reports measure): the old
  // rule steps to audio on those samples, the current one does not.
  let oldSteps = 0;
  for (const name of ["pred-q--wifi-fade--predictive", "pred-q--cell-congestion--predictive"]) {
    for (const rows of recording(name).senders) {
      const video = rows.slice(0, rows.findIndex((r) => r.level === "audio"));
      assert.ok(video.length > 0 && video.at(-1).level === "low", `${name}: it went to audio from low`);
      for (const opts of [{}, { ownShare: Infinity, needFloor: /** @type {const} */ ("audio") }]) {
        const l = new SendLadder(opts);
        const steps = [];
        for (const r of video) {
          const v = { t: r.t, rtt: r.rtt, loss_out: r.loss_out, bw_out: r.bw_out, send_kbps: r.send_kbps ?? null, qlr: r.qlr };
          const step = l.observe(v) ?? l.observePrediction(r.pred ?? null, r.t);
          if (step) steps.push(step.level);
        }
        if (opts.ownShare) oldSteps += steps.filter((s) => s === "audio").length;
        else assert.ok(!steps.includes("audio"), `${name}: ${steps.join(" ")}`);
      }
    }
  }
  assert.ok(oldSteps >= 3, `the old rule reproduces the bug (${oldSteps} steps to audio)`);
});

test("replayed on every cap300 and collapse run without prediction: reduced within 4 s of the 300 kbit/s cap", () => {
  for (const [name, capLabel] of [["pred-c--cap300--off", "300 kbit/s up"], ["pred-c--collapse--off", "300 kbit/s"],
    ["pred-e--collapse--off", "300 kbit/s"], ["pred-f--collapse--off", "300 kbit/s"], ["pred-f--collapse--reactive", "300 kbit/s"],
    ["pred-g--collapse--off", "300 kbit/s"], ["pred-h--collapse--off", "300 kbit/s"], ["pred-p--collapse--off", "300 kbit/s"]]) {
    const senders = replay(name);
    const first = senders.map((steps) => steps.find((s) => s.phase === capLabel)).filter(Boolean);
    assert.ok(first.length >= 1, `${name}: no step under the cap`);
    for (const s of first) assert.ok(s.s <= 4 - 0.5 && s.level === "reduced", `${name}: ${JSON.stringify(s)}`);
  }
});

test("the drop rule is after the warm-up, like the rest of the bandwidth rules", () => {
  const l = new SendLadder();
  assert.deepEqual(run(l, times(3, { bw_out: 300, send_kbps: 900 })), []);
  assert.ok(LADDER_DEFAULTS.warmupMs === 6000);
  assert.deepEqual(run(l, [{ bw_out: 300, send_kbps: 900 }], 6000), ["reduced:bandwidth"]);
});

test("a low estimate while we send well under it (a still picture) does not step down", () => {
  const l = new SendLadder();
  assert.deepEqual(run(l, times(10, { bw_out: 300, send_kbps: 180, qlr: "none" })), []);
});

test("a busy CPU steps down resolution, but never to audio only", () => {
  const l = new SendLadder();
  assert.deepEqual(run(l, times(12, { qlr: "cpu" })), ["reduced:cpu", "low:cpu"]);
  assert.equal(l.level, "low");
});

test("stepping up needs several good samples and the hold after a step down", () => {
  const l = new SendLadder();
  run(l, [{ loss_out: 0.4 }]); // reduced at t=0
  // Good from t=2 s: 3 in a row by t=6 s, but the hold (8 s) lets it up only at t=8 s.
  assert.deepEqual(run(l, times(3, GOOD), 2000), []);
  assert.deepEqual(run(l, [GOOD], 8000), ["full:recovered"]);
  const m = new SendLadder();
  run(m, [{ loss_out: 0.4 }]);
  assert.deepEqual(run(m, [GOOD, GOOD, { loss_out: 0.05 }, GOOD, GOOD], 2000), [], "a fair sample restarts the count");
  assert.deepEqual(run(m, [GOOD], 12000), ["full:recovered"]);
});

test("a step up that fails soon doubles the hold before the next try (no flapping)", () => {
  const l = new SendLadder();
  run(l, [{ loss_out: 0.4 }]); // down at 0
  run(l, times(4, GOOD), 2000); // up at 8 s
  assert.equal(l.level, "full");
  run(l, [{ loss_out: 0.4 }], 10000); // down again 2 s after the up: the hold doubles to 16 s
  const steps = [];
  for (let t = 12000; t <= 40000; t += 2000) {
    const s = l.observe({ ...GOOD, t });
    if (s) steps.push(`${s.level}:${s.reason}@${t}`);
  }
  assert.deepEqual(steps, ["full:recovered@26000"]);
});

test("stepping up wants bitrate headroom for the next level, and probes after a long hold", () => {
  const l = new SendLadder();
  run(l, [{ loss_out: 0.4 }]); // reduced at 0
  const tight = { bw_out: 350, send_kbps: 280, qlr: "none" }; // enough for reduced, not for full
  const steps = [];
  for (let t = 2000; t <= 30000; t += 2000) {
    const s = l.observe({ ...GOOD, ...tight, t });
    if (s) steps.push(`${s.level}:${s.reason}@${t}`);
  }
  // 2 holds of 8 s: a probe; the path cannot carry full (the estimate does not grow in
  // the 5 s it is given), so down again, and the hold doubles.
  assert.deepEqual(steps, ["full:recovered@16000", "reduced:bandwidth@22000"]);
  assert.equal(l.hold, 16000);
});

test("a probe after a cap was lifted is given time: the estimate ramps while the encoder says bandwidth", () => {
  const l = new SendLadder();
  run(l, times(10, { bw_out: 3500, send_kbps: 1300 }));
  run(l, [{ bw_out: 600, send_kbps: 1300 }], 20000); // the cap: reduced
  const capped = { bw_out: 298, send_kbps: 148, qlr: "bandwidth" }; // the lab's cap300, run 2
  assert.deepEqual(run(l, times(8, capped), 22000), ["full:recovered"], "a probe 2 holds after the step");
  // The cap is gone; Chrome's estimate grows ~8 %/s from where it was, the encoder
  // reports "bandwidth" while it ramps up. (The first retune stepped down here at once.)
  const ramp = [{ bw_out: 347, send_kbps: 128 }, { bw_out: 405, send_kbps: 300 }, { bw_out: 480, send_kbps: 420 }, { bw_out: 900, send_kbps: 700 }]
    .map((s) => ({ ...s, qlr: "bandwidth" }));
  assert.deepEqual(run(l, ramp, 38000), []);
  assert.equal(l.level, "full");
});

test("a prediction of trouble steps down before it comes, at most once per 4 s, never below low", () => {
  const l = new SendLadder();
  assert.equal(l.observePrediction(0.2, 0), null);
  assert.deepEqual(l.observePrediction(0.8, 1000), { level: "reduced", reason: "predicted", from: "full", t: 1000 });
  assert.equal(l.observePrediction(0.9, 3000), null, "too soon for another");
  assert.equal(l.observePrediction(0.9, 5000)?.level, "low");
  assert.equal(l.observePrediction(0.95, 9000), null, "audio only is for trouble seen, not foreseen");
  assert.equal(l.observePrediction(0.95, 13000), null);
  assert.equal(l.level, "low");
  // Seen trouble still goes to audio.
  assert.deepEqual(run(l, [{ loss_out: 0.4 }], 14000), ["audio:loss"]);
});

/** Samples 2 s apart from t0, each with a prediction p(i) first (as the controller does); the steps taken. */
function runPredicted(l, n, p, t0, sample = GOOD) {
  const steps = [];
  for (let i = 0; i < n; i++) {
    const t = t0 + i * 2000;
    const step = l.observe({ ...GOOD, ...sample, t }) ?? l.observePrediction(p(i), t);
    if (step) steps.push(`${step.level}:${step.reason}@${t}`);
  }
  return steps;
}

test("a standing prediction holds the level only for a bounded time without trouble", () => {
  const l = new SendLadder();
  // p stays at 0.9 on a link that stays fine: down to low in 4 s, held while the run of
  // predictions is younger than predictHoldMs, then the ladder steps back up on its own rules.
  const steps = runPredicted(l, 30, () => 0.9, 0);
  assert.deepEqual(steps.slice(0, 2), ["reduced:predicted@0", "low:predicted@4000"]);
  const up = steps.filter((s) => s.includes("recovered"));
  assert.ok(up.length >= 2, steps.join(" "));
  const firstUp = Number(up[0].split("@")[1]);
  assert.ok(firstUp >= LADDER_DEFAULTS.predictHoldMs && firstUp <= LADDER_DEFAULTS.predictHoldMs + 8000, steps.join(" "));
  assert.equal(steps.filter((s) => s.includes("predicted")).length, 2, "no new predicted steps from the same standing run");
  assert.equal(l.level, "full");
});

test("a stale or falling prediction does not block stepping up", () => {
  const l = new SendLadder();
  assert.equal(l.observePrediction(0.9, 0)?.level, "reduced");
  // No prediction since (a reactive sample each time): after the hold it steps up.
  assert.deepEqual(run(l, times(6, GOOD), 2000), ["full:recovered"]);
  const m = new SendLadder();
  m.observePrediction(0.9, 0);
  // The prediction falls under the threshold: it holds nothing.
  assert.deepEqual(runPredicted(m, 6, () => 0.3, 2000), ["full:recovered@8000"]);
});

test("trouble seen restarts the bound: a prediction after a reactive step may hold again", () => {
  const l = new SendLadder();
  runPredicted(l, 10, () => 0.9, 0); // the run of predictions is 18 s old: past its bound
  assert.equal(l.predictionHolds(18000), false);
  assert.deepEqual(run(l, [{ loss_out: 0.4 }], 20000), ["audio:loss"]);
  l.observePrediction(0.9, 22000);
  assert.equal(l.predictionHolds(22000), true);
  assert.equal(l.predictionHolds(22000 + LADDER_DEFAULTS.predictFreshMs + 1), false, "stale");
});

test("a forced level holds until released; then the ladder goes on from it", () => {
  const l = new SendLadder();
  assert.deepEqual(l.force("audio", 0), { level: "audio", reason: "manual", from: "full", t: 0 });
  assert.deepEqual(run(l, times(10, GOOD), 2000), []);
  assert.equal(l.force(null, 22000), null);
  assert.deepEqual(run(l, times(8, GOOD), 24000), ["low:recovered", "reduced:recovered"]);
  assert.throws(() => l.force(/** @type {any} */ ("audio-only"), 0));
});

test("the sender's view: packets the peer reports lost over packets sent, of the kinds sent; ms and kbit/s", () => {
  // span: sent and lost between the peer's last two reports (stats-sample.js sentByKind).
  const kind = (packetsSent, packetsLost, fractionLost = 0, span = null) =>
    ({ packetsSent, bytesSent: packetsSent * 1000, packetsLost, fractionLost, rr: "", mark: null, span });
  const at = (t, audio, video, extra = {}) => ({ t, rtt: 0.12, bwOut: 850_000, qlr: "none", sent: { audio, video }, ...extra });
  const prev = at(0, kind(100, 0), kind(500, 10, 0.3));
  // 100 audio + 400 video packets sent, 5 + 20 reported lost; a report's fractionLost of 0.33 is not the loss.
  const cur = at(2000, kind(200, 5, 0.33, { sent: 100, lost: 5 }), kind(900, 30, 0.33, { sent: 400, lost: 20 }));
  assert.deepEqual(senderView(prev, cur), { t: 2000, rtt: 120, loss_out: 0.05, bw_out: 850, send_kbps: 2000, qlr: "none" });
  // Video paused: its counters stand still; only audio counts.
  const paused = at(4000, kind(300, 6, 0, { sent: 100, lost: 1 }), kind(900, 30, 0.3, { sent: 400, lost: 20 }));
  assert.equal(senderView(cur, paused).loss_out, 0.01);
  // No previous reading: the worst fractionLost of what was sent stands in.
  assert.equal(senderView(null, cur).loss_out, 0.33);
  assert.deepEqual(senderView(null, at(0, undefined, undefined, { rtt: null, bwOut: null, qlr: null })),
    { t: 0, rtt: null, loss_out: null, bw_out: null, send_kbps: null, qlr: null });
});

test("after the link was down, the decayed bitrate estimate does not step for the warm-up, as at the start", () => {
  const l = new SendLadder();
  run(l, times(4, GOOD)); // warm, at full
  l.linkDown(); // a blackout: no samples; the estimate decays meanwhile
  const decayed = { bw_out: 34, send_kbps: 40, qlr: "bandwidth" };
  assert.deepEqual(run(l, times(3, decayed), 20000), [], "the first 6 s after the path is back");
  assert.deepEqual(run(l, [decayed], 26000), ["low:bandwidth"], "a path that stays that thin still steps (this rule: to low at most)");
  const m = new SendLadder();
  run(m, times(4, GOOD));
  m.linkDown();
  assert.deepEqual(run(m, [{ loss_out: 0.4 }], 20000), ["reduced:loss"], "loss still counts at once");
});
