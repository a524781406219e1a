// Link quality from successive getStats samples. No DOM: unit-tested.

import { sentLoss } from "./stats-sample.js";

/**
 * @typedef {{packetsLost: number, packetsReceived: number, rtt: number|null, fps: number|null,
 *            framesDecoded: number}} LinkSample
 * @typedef {"good"|"fair"|"poor"|"unknown"} LinkQuality
 */

/**
 * Classify the link over the interval between two samples of the same peer.
 * Loss is computed on the interval (not since the call began) so a link that
 * recovers is seen as recovered.
 * @param {LinkSample|null} prev @param {LinkSample} cur @param {{expectVideo?: boolean}} [opts]
 * @returns {LinkQuality}
 */
export function classifyLink(prev, cur, opts = {}) {
  if (!prev) return "unknown";
  const lost = Math.max(0, cur.packetsLost - prev.packetsLost);
  const received = Math.max(0, cur.packetsReceived - prev.packetsReceived);
  const total = lost + received;
  const frozen = opts.expectVideo && cur.framesDecoded === prev.framesDecoded;
  if (total === 0) return frozen ? "poor" : "unknown";
  const loss = lost / total;
  const rtt = cur.rtt ?? 0;
  if (loss > 0.08 || rtt > 0.6 || frozen) return "poor";
  if (loss > 0.02 || rtt > 0.25) return "fair";
  return "good";
}

/**
 * What we send to one peer, decided from OUR view of the link to it (what the peer
 * reports about receiving us, the bitrate our congestion control says is available,
 * why our encoder is limited), never from the loss of what we receive: a peer's bad
 * uplink must not make us degrade what we send it. Levels, best first:
 *   full    the camera as it is (up to 1.2 Mbit/s, 30 fps)
 *   reduced half resolution, 110 kbit/s, 15 fps (with audio and FEC under a 300 kbit/s cap)
 *   low     quarter resolution, 50 kbit/s, 10 fps
 *   audio   video encoding paused (audio always stays on)
 * `need` is the outgoing bitrate (kbit/s, audio and overhead included) a level is
 * worth keeping at: below it the available bitrate cannot carry that level.
 */
export const SEND_LEVELS = /** @type {const} */ (["full", "reduced", "low", "audio"]);

/**
 * @typedef {typeof SEND_LEVELS[number]} SendLevel
 * @typedef {"loss"|"rtt"|"bandwidth"|"cpu"|"predicted"|"recovered"|"manual"} StepReason
 * @typedef {{level: SendLevel, reason: StepReason, from: SendLevel, t: number}} Step
 * @typedef {{t: number, rtt: number|null, loss_out: number|null, bw_out: number|null,
 *            send_kbps: number|null, qlr: string|null}} SenderView
 *   t ms epoch; rtt ms; loss_out fraction of what we send lost (the peer's reports);
 *   bw_out kbit/s available to send; send_kbps what we sent; qlr the outbound video
 *   qualityLimitationReason
 */

/** @type {Record<SendLevel, {maxBitrate?: number, scaleResolutionDownBy?: number, maxFramerate?: number, need: number}>} */
export const LEVEL_ENCODINGS = {
  // A need is what the level below can show: Chromium's estimate grows to about 1.5x
  // what is sent, so stepping up does not wait for a probe where the path is fine.
  // `reduced` must fit under a 300 kbit/s cap with audio, headers, and the FEC and
  // retransmissions Chromium adds on top of maxBitrate while the cap's first losses
  // last: in the lab 250 kbit/s sent ~350, 160 kbit/s still 300-357 (200 once the
  // loss had stopped), over the cap, and the loss stepped it on down to low.
  full: { maxBitrate: 1_200_000, scaleResolutionDownBy: 1, maxFramerate: 30, need: 400 },
  reduced: { maxBitrate: 110_000, scaleResolutionDownBy: 2, maxFramerate: 15, need: 170 },
  low: { maxBitrate: 50_000, scaleResolutionDownBy: 4, maxFramerate: 10, need: 100 },
  audio: { need: 0 },
};

export const LADDER_DEFAULTS = {
  lossDown: 0.1, // loss_out at or above this on `downAfter` samples in a row: one step down
  lossSevere: 0.3, // ... or once at or above this
  lossGood: 0.03, // below this (and the rest good) counts toward stepping up
  rttDown: 500, // ms
  rttGood: 300, // ms
  downAfter: 2, // samples (2 s apart)
  cpuAfter: 2,
  upAfter: 3, // good samples in a row before one step up
  holdMs: 8000, // no step up sooner than this after a step down...
  holdMaxMs: 64000, // ...doubling up to this when a step up failed (down again within flapMs)
  flapMs: 30000,
  calmMs: 60000, // no step down this long: the hold is back to holdMs
  warmupMs: 6000, // the bitrate estimate ramps up at the start (and after an outage): it does not step down yet
  // What audio adds to send_kbps (bytesSent: payload, no headers): ~35 kbit/s at audio
  // only in the lab. A level's own ceiling is its video maxBitrate plus this.
  audioKbps: 35,
  // Sending at or above this share of the level's own ceiling, the level (not the path)
  // holds what we send: an estimate that has fallen to about that is application-limited
  // (it follows our own lowered rate), not a squeeze, and "under the level's need" does not
  // step on it (loss, RTT and a drop still do).
  ownShare: 0.8,
  // "Under the level's need" never steps past this level (the drop rule, loss and RTT may).
  needFloor: /** @type {SendLevel} */ ("low"),
  dropShare: 0.6, // the estimate under this share of what we sent over the interval...
  dropNeeds: 2, // ...and under this many times the level's need: the path shrank, step now
  rampMs: 5000, // after a step up, this long before "under the level's need" steps down again
  settleMs: 3000, // no loss or drop step this soon after a step down: that sample reports the old level
  headroom: 1.0, // bw_out must reach headroom * need(next level) to step up...
  // ...unless the hold has passed this many times over (we probe): from reduced the
  // estimate cannot show full's need (it grows to ~1.5x what is sent), so a lifted cap
  // is found by a probe, and a probe into a cap that stands costs one 2 s sample.
  probeAfter: 2,
  predictDown: 0.5, // a predicted probability at or above this steps down one level
  predictEveryMs: 4000, // at most one predicted step this often
  predictFloor: /** @type {SendLevel} */ ("low"), // a prediction alone never goes below this
  predictFreshMs: 3000, // a prediction older than this holds nothing (one sample is 2 s)
  predictHoldMs: 16000, // a prediction standing this long without trouble no longer holds the level
};

export class SendLadder {
  /** @param {Partial<typeof LADDER_DEFAULTS>} [opts] */
  constructor(opts = {}) {
    this.o = { ...LADDER_DEFAULTS, ...opts };
    this.index = 0;
    this.lossy = 0;
    this.slow = 0;
    this.cpu = 0;
    this.good = 0;
    this.hold = this.o.holdMs;
    /** @type {number|null} */ this.startedAt = null;
    this.lastDownAt = -Infinity;
    this.lastUpAt = -Infinity;
    this.lastPredictAt = -Infinity;
    /** @type {number} last prediction (0 when none): a high one blocks stepping up */
    this.pred = 0;
    this.predAt = -Infinity;
    /** @type {number|null} since when predictions have stood at or above predictDown */
    this.predSince = null;
    /** @type {SendLevel|null} a level forced by hand (tests, the lab): the ladder holds it */
    this.pinned = null;
  }

  /** @returns {SendLevel} */
  get level() { return SEND_LEVELS[this.index]; }

  /** @param {number} index @param {StepReason} reason @param {number} t @returns {Step} */
  go(index, reason, t) {
    const from = this.level;
    if (index > this.index) {
      if (t - this.lastUpAt < this.o.flapMs) this.hold = Math.min(this.hold * 2, this.o.holdMaxMs);
      this.lastDownAt = t;
      if (reason !== "predicted") this.predSince = null; // trouble seen: a prediction may hold again
    } else {
      this.lastUpAt = t;
    }
    this.index = index;
    this.lossy = 0; this.slow = 0; this.cpu = 0; this.good = 0;
    return { level: this.level, reason, from, t };
  }

  /**
   * One sample of the sender's view (every 2 s).
   * @param {SenderView} v @returns {Step|null} the step taken, if any
   */
  observe(v) {
    const o = this.o;
    const t = v.t;
    this.startedAt ??= t;
    if (this.pinned) return null;
    if (t - this.lastDownAt > o.calmMs) this.hold = o.holdMs;
    const loss = v.loss_out;
    const rtt = v.rtt;
    this.lossy = loss !== null && loss >= o.lossDown ? this.lossy + 1 : 0;
    this.slow = rtt !== null && rtt >= o.rttDown ? this.slow + 1 : 0;
    this.cpu = v.qlr === "cpu" ? this.cpu + 1 : 0;
    const last = SEND_LEVELS.length - 1;
    const need = LEVEL_ENCODINGS[this.level].need;
    const warm = t - this.startedAt >= o.warmupMs;
    // Losses reported in the first sample after a step down are of what the old level
    // sent (a cap's queue drops arrive a report late): they do not step again.
    const settled = t - this.lastDownAt >= o.settleMs;
    if (this.index < last) {
      if (settled && loss !== null && (loss >= o.lossSevere || this.lossy >= o.downAfter)) return this.go(this.index + 1, "loss", t);
      if (this.slow >= o.downAfter) return this.go(this.index + 1, "rtt", t);
      // Below the level's need while we send about all of it (or the encoder says the
      // bitrate limits it): a still picture sends little, and the estimate then need
      // not grow past ~1.5x what is sent, which is no congestion. And only while the
      // estimate, not the level, holds what we send (under ownShare of the level's own
      // ceiling): at `low` we send ~90-120 kbit/s, all the level allows, and Chromium's
      // estimate of a sender limited by itself falls to about that (76-97 kbit/s on paths
      // carrying 700-900 in the lab), under `low`'s need: that is our own rate read back,
      // not a shrunken path, and it sent calls to audio only on fine paths (before
      // 2026-12-08). A real squeeze under a level's own rate shows as loss, RTT or a drop.
      const send = v.send_kbps ?? null;
      const own = ((LEVEL_ENCODINGS[this.level].maxBitrate ?? 0) / 1000 + o.audioKbps) * o.ownShare;
      const squeezed = send === null
        || ((v.qlr === "bandwidth" || (v.bw_out !== null && send >= 0.7 * v.bw_out)) && send < own);
      // Not in the first samples after a step up: the estimate grows only once we send
      // more (~8 %/s), and the encoder says `bandwidth` while it ramps up, so a probe
      // would be judged before it could show anything. Loss and a drop still count.
      const ramping = t - this.lastUpAt < o.rampMs;
      // Nor in the sample right after a step down (settled): its send rate is still in
      // the change, and Chromium's estimate dips while the encoder ramps down (the lab's
      // cell-congestion at 900 kbit/s, 2 s after a predicted step to low: 61 kbit/s).
      // And never from `low` nor to audio only: send_kbps counts payload only (the
      // telemetry's adds headers), and at `low` what the level sends of its own accord and
      // what a squeeze leaves it are too close to tell apart (the lab, 2026-12-08: 2-4 s
      // after a step to low on a 900-1,200 kbit/s path, 67-77 kbit/s sent by the
      // telemetry's count, estimate 61-71, and it went to audio only). Audio only is for
      // trouble seen: loss, RTT, or the drop rule below.
      const floor = SEND_LEVELS.indexOf(o.needFloor);
      if (warm && !ramping && settled && squeezed && this.index < floor && v.bw_out !== null && v.bw_out < need) {
        return this.go(Math.min(fitting(v.bw_out, this.index + 1), floor), "bandwidth", t);
      }
      // The estimate fell far under what we were sending: the path shrank (a cap). It
      // reads this within ~1 s of an abrupt cap, one sample before it falls under the
      // level's need and two before loss reports arrive. Chromium never sends far over
      // its own estimate otherwise, so random loss (which it does not read as
      // congestion) does not trip it; a high estimate (a cap the level still fits)
      // neither.
      const dropped = send !== null && v.bw_out !== null && v.bw_out < o.dropShare * send && v.bw_out < o.dropNeeds * need;
      if (warm && dropped && settled) return this.go(fitting(/** @type {number} */ (v.bw_out), this.index + 1), "bandwidth", t);
      // A busy CPU is helped by fewer pixels, not by dropping video altogether.
      if (this.cpu >= o.cpuAfter && this.index < last - 1) return this.go(this.index + 1, "cpu", t);
    }
    const fine = (loss === null || loss < o.lossGood) && (rtt === null || rtt < o.rttGood)
      && v.qlr !== "cpu" && !this.predictionHolds(t);
    this.good = fine ? this.good + 1 : 0;
    if (this.index === 0 || this.good < o.upAfter) return null;
    const since = t - this.lastDownAt;
    if (since < this.hold) return null;
    const next = LEVEL_ENCODINGS[SEND_LEVELS[this.index - 1]].need;
    // A probe (no headroom shown) waits several holds after the last step either way.
    const probe = t - Math.max(this.lastDownAt, this.lastUpAt) >= o.probeAfter * this.hold;
    const room = v.bw_out === null || v.bw_out >= o.headroom * next || probe;
    return room ? this.go(this.index - 1, "recovered", t) : null;
  }

  /**
   * The link is down or silent (call-controller.js passes no sample then). Chromium's
   * bitrate estimate decays while no feedback comes (about 20 %/s: 240 kbit/s fell to
   * 34 in the relay-switch test's blackouts) and climbs back from there, so the first
   * samples after it read as a collapsed path that is not one: they stepped the ladder
   * to audio only right after the path came back. From the next sample on the estimate
   * is read as at the start of a call: no bandwidth step for warmupMs (loss and RTT
   * still count; sentByKind leaves the outage's own losses out).
   */
  linkDown() {
    this.startedAt = null;
  }

  /**
   * Whether a prediction holds the level (no step up): the last one is fresh
   * (predictFreshMs), at or above predictDown, and its run of high predictions
   * began less than predictHoldMs ago. Past that bound the trouble it foresaw did
   * not come (the reactive rules would have stepped down and restarted the run):
   * the prediction alone no longer costs the link its video.
   * @param {number} t ms
   */
  predictionHolds(t) {
    const o = this.o;
    return this.predSince !== null && this.pred >= o.predictDown && t - this.predAt <= o.predictFreshMs
      && t - this.predSince < o.predictHoldMs;
  }

  /**
   * A predictor's probability of trouble on this link in the next few seconds:
   * step down one level before it comes (at most one step per predictEveryMs, never
   * below predictFloor: audio only is for trouble seen, not foreseen), while the
   * prediction holds (predictionHolds).
   * @param {number|null} p @param {number} t ms @returns {Step|null}
   */
  observePrediction(p, t) {
    this.pred = p ?? 0;
    this.predAt = t;
    if (p === null || p < this.o.predictDown) {
      this.predSince = null;
      return null;
    }
    this.predSince ??= t;
    if (this.pinned || !this.predictionHolds(t)) return null;
    if (this.index >= SEND_LEVELS.indexOf(this.o.predictFloor) || t - this.lastPredictAt < this.o.predictEveryMs) return null;
    this.lastPredictAt = t;
    return this.go(this.index + 1, "predicted", t);
  }

  /**
   * Hold a level by hand (null: back to automatic from the current level). The lab
   * and tests may give the reason the receiver is told (default "manual").
   * @param {SendLevel|null} level @param {number} t @param {StepReason} [reason] @returns {Step|null}
   */
  force(level, t, reason = "manual") {
    this.pinned = level;
    if (level === null || level === this.level) return null;
    const index = SEND_LEVELS.indexOf(level);
    if (index < 0) throw new Error(`unknown send level ${level}`);
    const step = this.go(index, reason, t);
    this.lastDownAt = t; // automatic again later: start from a fresh hold
    return step;
  }
}

/** The best level whose need fits `kbps`, no better than `atMost`. @param {number} kbps @param {number} atMost */
function fitting(kbps, atMost) {
  for (let i = atMost; i < SEND_LEVELS.length; i++) if (LEVEL_ENCODINGS[SEND_LEVELS[i]].need <= kbps) return i;
  return SEND_LEVELS.length - 1;
}

/**
 * @typedef {import("./stats-sample.js").SendKind} SendKind
 * @typedef {{t: number, rtt: number|null, bwOut: number|null, qlr: string|null,
 *            sent: import("./stats-sample.js").SentByKind}} SendStats
 *   t ms; rtt seconds (selected candidate pair); bwOut bit/s; sent per kind: our outbound
 *   packets and bytes, and what the peer reports losing of them (stats-sample.js sentByKind)
 */

/**
 * The sender's view of one link over the interval between two stats readings. Loss is
 * stats-sample.js `sentLoss` (packets lost over packets sent, summed over the kinds
 * that sent), the telemetry's `loss_out` too.
 * @param {SendStats|null} prev @param {SendStats} cur @returns {SenderView}
 */
export function senderView(prev, cur) {
  let bytes = 0;
  for (const kind of /** @type {const} */ (["audio", "video"])) {
    const now = cur.sent[kind];
    const before = prev?.sent[kind];
    if (now && before) bytes += Math.max(0, now.bytesSent - before.bytesSent);
  }
  const dt = prev ? cur.t - prev.t : 0;
  return {
    t: cur.t,
    rtt: cur.rtt === null ? null : cur.rtt * 1000,
    loss_out: sentLoss(prev?.sent ?? null, cur.sent),
    bw_out: cur.bwOut === null ? null : Math.round(cur.bwOut / 1000),
    send_kbps: dt > 0 ? Math.round((bytes * 8) / dt) : null,
    qlr: cur.qlr,
  };
}

/**
 * Whose connection a problem is on, so the right person is told. Ours when our
 * own signaling socket is down too (offline, reconnecting) or when every link is
 * poor at once with two or more peers (the common factor is us); one peer's when
 * only its link is poor while others are fine; with a single peer and our socket
 * healthy the stats cannot tell the two ends apart, so the link between is named.
 * @param {{selfTrouble: boolean, levels: Map<string, LinkQuality>}} input
 * @returns {{side: "none"|"self"|"peer"|"between", peers: string[]}}
 */
export function blame({ selfTrouble, levels }) {
  const poor = [...levels].filter(([, q]) => q === "poor").map(([id]) => id);
  if (poor.length === 0) return { side: "none", peers: [] };
  if (selfTrouble) return { side: "self", peers: poor };
  if (levels.size >= 2 && poor.length === levels.size) return { side: "self", peers: poor };
  if (levels.size === 1) return { side: "between", peers: poor };
  return { side: "peer", peers: poor };
}

/**
 * The active speaker from one round of inbound audio levels (0..1 per peer):
 * the loudest above a speech threshold, or null when nobody speaks.
 * @param {Map<string, number>} levels @param {number} [threshold]
 * @returns {string|null}
 */
export function loudest(levels, threshold = 0.02) {
  let best = null;
  let level = threshold;
  for (const [id, l] of levels) if (l > level) { best = id; level = l; }
  return best;
}
