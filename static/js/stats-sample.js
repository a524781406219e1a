// One telemetry SAMPLE (docs/protocol.md, "Call telemetry") from two successive
// getStats() reports of one RTCPeerConnection: interval figures are differences
// between the two. Pure: no DOM, no RTCPeerConnection; reports are anything with
// forEach() and get() (an RTCStatsReport, or a Map in the unit tests).

/**
 * @typedef {{forEach: (fn: (s: any) => void) => void, get: (id: string) => any}} StatsReport
 * @typedef {"full"|"reduced"|"low"|"audio"} SendLevel
 * @typedef {{
 *   peer: string, t: number, rtt: number|null, loss_in: number|null, loss_out: number|null,
 *   jitter: number|null, bw_out: number|null, send_kbps: number|null, recv_kbps: number|null,
 *   qlr: "none"|"cpu"|"bandwidth"|"other"|null, fps_in: number|null, decoded: number|null,
 *   dropped: number|null, freezes: number|null, freeze_ms: number|null, conceal: number|null,
 *   relay: boolean|null, level: SendLevel|null, pred: number|null, events: string[],
 * }} Sample
 */

export const MAX_EVENTS = 8;
const QLR = ["none", "cpu", "bandwidth", "other"];
const LEVELS = ["full", "reduced", "low", "audio"];
// The server's ranges (rooms/telemetry.py): a value outside is clamped or dropped
// here so one odd counter never gets the whole frame refused.
const EVENT_RE = /^[A-Za-z0-9_.:+-]{1,64}$/;

/** @param {any} v @returns {number|null} */
const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** @param {number|null} v @param {number} lo @param {number} hi @param {number} [digits] */
function clamp(v, lo, hi, digits = 3) {
  if (v === null) return null;
  const f = 10 ** digits;
  return Math.round(Math.min(hi, Math.max(lo, v)) * f) / f;
}

/**
 * The selected candidate pair: the transport's selectedCandidatePairId, else a
 * nominated succeeded pair (older browsers), else one flagged `selected` (Firefox).
 * @param {StatsReport} report
 */
export function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (!pair && s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? null;
  });
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === "candidate-pair" && (s.selected || (s.nominated && s.state === "succeeded"))) pair = s;
    });
  }
  return pair;
}

/**
 * Sum over the entries of ``type`` (and ``kind``) present in both reports of
 * ``cur[field] - prev[field]``, with the seconds between them. An entry missing
 * from prev (a new stream) or whose counter went backwards (a new connection
 * reusing the id) is left out: its counters did not run over this interval.
 * @param {StatsReport} prev @param {StatsReport} cur @param {string} type
 * @param {string|null} kind @param {string[]} fields
 * @returns {{sums: Record<string, number>, seconds: number, entries: number}}
 */
function deltas(prev, cur, type, kind, fields) {
  /** @type {Record<string, number>} */
  const sums = Object.fromEntries(fields.map((f) => [f, 0]));
  let seconds = 0;
  let entries = 0;
  cur.forEach((c) => {
    if (c.type !== type || (kind && c.kind !== kind)) return;
    const p = prev.get(c.id);
    if (!p || p.type !== type) return;
    const d = fields.map((f) => (num(c[f]) ?? 0) - (num(p[f]) ?? 0));
    if (d.some((x) => x < 0)) return;
    fields.forEach((f, i) => { sums[f] += d[i]; });
    seconds = Math.max(seconds, ((num(c.timestamp) ?? 0) - (num(p.timestamp) ?? 0)) / 1000);
    entries += 1;
  });
  return { sums, seconds, entries };
}

/**
 * Everything that has come from the peer so far on this connection, as one key that
 * changes whenever anything more arrives: RTP (inbound-rtp packetsReceived), anything
 * over the transport (RTCP, the data channel: transport bytesReceived), and ICE checks
 * on the selected pair (requests and responses received; not other pairs': a dead
 * selected pair beside live TURN checks is still dead for media). "" when the report has
 * none of these counters (nothing tells).
 * @param {StatsReport} report @returns {string}
 */
export function heardKey(report) {
  let rtp = 0;
  let bytes = 0;
  let counters = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && num(s.packetsReceived) !== null) { rtp += s.packetsReceived; counters += 1; }
    if (s.type === "transport" && num(s.bytesReceived) !== null) { bytes += s.bytesReceived; counters += 1; }
  });
  const pair = selectedPair(report);
  const requests = num(pair?.requestsReceived);
  const responses = num(pair?.responsesReceived);
  if (requests !== null || responses !== null) counters += 1;
  return counters ? `${rtp}/${bytes}/${(requests ?? 0) + (responses ?? 0)}` : "";
}

/**
 * @typedef {{sent: number, lost: number}} LossSpan packets sent and reported lost
 * @typedef {{packetsSent: number, bytesSent: number, packetsLost: number|null, fractionLost: number|null,
 *            rr: string, mark: LossSpan|null, span: LossSpan|null, skip?: boolean}} SendKind
 * @typedef {{audio?: SendKind, video?: SendKind}} SentByKind
 *   per kind what we sent (outbound-rtp, summed over its streams) and what the peer
 *   reports losing of it (remote-inbound-rtp: cumulative packetsLost, summed, and the
 *   fractionLost of its last report). `rr` tells the peer's receiver reports apart;
 *   `mark` is what we had sent and the peer had lost at the reading that first showed
 *   the last report; `span` is the loss between the last two reports' marks. `skip`:
 *   the link went down since; the next report only marks (its losses are the outage's).
 */

/**
 * What we sent per kind and what the peer reports losing of it, from one report;
 * ``prev`` (the same link's previous reading) carries the marks and spans on.
 *
 * Why spans: a receiver report comes every ~1 s for video and every ~5 s for audio, so
 * the lost count jumps once per report while what we sent grows every reading. Lost
 * over sent in one 0.5 s interval read 10x the real loss when an audio report landed
 * in it (0.50 on a 5 % path, tests/test_lab_short.py); lost over what was sent between
 * two reports does not.
 *
 * ``outage``: the link is down now (ICE neither connected nor completed, or nothing has
 * come from the peer for peer.js SILENT_MS: a dead path ICE has not noticed yet). What is lost
 * while it is down is the outage's, not congestion: no span stands while it lasts, and
 * the first report after it only marks (docs/adaptation.md, "Inputs").
 * @param {StatsReport} report @param {SentByKind|null} [prev] @param {{outage?: boolean}} [opts]
 * @returns {SentByKind}
 */
export function sentByKind(report, prev = null, { outage = false } = {}) {
  /** @type {Record<string, SendKind>} */
  const out = {};
  const kind = (/** @type {string} */ k) =>
    (out[k] ??= { packetsSent: 0, bytesSent: 0, packetsLost: null, fractionLost: null, rr: "", mark: null, span: null });
  report.forEach((s) => {
    if (s.kind !== "audio" && s.kind !== "video") return;
    if (s.type === "outbound-rtp") {
      kind(s.kind).packetsSent += num(s.packetsSent) ?? 0;
      kind(s.kind).bytesSent += num(s.bytesSent) ?? 0;
    }
    if (s.type === "remote-inbound-rtp") {
      const k = kind(s.kind);
      const lost = num(s.packetsLost);
      if (lost !== null) k.packetsLost = (k.packetsLost ?? 0) + lost;
      const fraction = num(s.fractionLost);
      if (fraction !== null) k.fractionLost = Math.max(k.fractionLost ?? 0, fraction);
      // A new receiver report changes its entry's timestamp (Chromium stamps the report's
      // arrival) and usually its counts or round trip.
      k.rr += `${s.timestamp}/${s.roundTripTimeMeasurements}/${s.totalRoundTripTime}/${lost}/${fraction};`;
    }
  });
  for (const [name, now] of Object.entries(out)) {
    if (now.packetsLost === null) continue;
    const before = prev?.[/** @type {"audio"|"video"} */ (name)];
    const here = { sent: now.packetsSent, lost: now.packetsLost };
    const skip = outage || Boolean(before?.skip);
    if (skip) {
      // Down, or the first report since it came back: a mark at most, no span.
      const fresh = !before || before.rr !== now.rr;
      now.mark = fresh ? here : before.mark;
      now.skip = outage || !fresh;
    } else if (!before || before.rr !== now.rr || !before.mark) {
      // A report we had not seen: the span since the last one's mark, and a new mark.
      const from = before?.mark ?? (before?.packetsLost != null ? { sent: before.packetsSent, lost: before.packetsLost } : null);
      now.span = from ? { sent: here.sent - from.sent, lost: Math.max(0, here.lost - from.lost) } : null;
      if (now.span && now.span.sent <= 0) now.span = before?.span ?? null;
      now.mark = here;
    } else {
      now.mark = before.mark;
      now.span = before.span;
    }
  }
  return out;
}

/**
 * The loss of what we send: over the kinds that sent packets since the previous
 * reading, the packets the peer reported lost between its last two receiver reports
 * over the packets we sent between them (`sentByKind` spans). A paused video keeps
 * its last report standing, which must not count. A single report's fractionLost
 * jumps far above the real loss (33-50 % on a 5 % random-loss path in the lab): it
 * stands in only without a previous reading of a kind, the worst of the kinds sending.
 * Null when nothing tells. The send ladder (call-quality.js senderView) and the
 * telemetry's `loss_out` both use this, so the model learns the loss the ladder acts on
 * (only the ladder's readings pass `outage`: the telemetry keeps an outage's losses).
 * @param {SentByKind|null} prev @param {SentByKind} cur @returns {number|null}
 */
export function sentLoss(prev, cur) {
  let lost = 0;
  let sent = 0;
  /** @type {number|null} */
  let fraction = null;
  for (const kind of /** @type {const} */ (["audio", "video"])) {
    const now = cur[kind];
    if (!now) continue;
    const before = prev?.[kind];
    if (!before) {
      if (now.fractionLost !== null && now.packetsSent > 0) fraction = Math.max(fraction ?? 0, now.fractionLost);
      continue;
    }
    if (now.packetsSent - before.packetsSent <= 0 || !now.span || now.span.sent <= 0) continue;
    sent += now.span.sent;
    lost += now.span.lost;
  }
  return sent > 0 ? Math.min(1, lost / sent) : fraction;
}

/** @param {StatsReport} report @param {string} type @param {string} kind */
function first(report, type, kind) {
  let found = null;
  report.forEach((s) => { if (!found && s.type === type && s.kind === kind) found = s; });
  return found;
}

/**
 * The SAMPLE about one remote peer over the interval between two reports of its
 * connection. ``prevReport`` null (the first sample): interval figures are null,
 * the instantaneous ones (rtt, jitter, bw_out, qlr, relay) are filled, and loss_out
 * is the worst fractionLost the peer last reported (``sentLoss``).
 * @param {StatsReport|null} prevReport @param {StatsReport} report
 * ``sent``: this link's readings of ``sentByKind`` (the previous sample's and this one's).
 * @param {{peer: string, level?: string|null, pred?: number|null, events?: string[], now?: number,
 *          sent?: {prev: SentByKind|null, cur: SentByKind}}} opts
 * @returns {Sample}
 */
export function sampleFrom(prevReport, report, { peer, level = null, pred = null, events = [], now, sent }) {
  const pair = selectedPair(report);
  let relay = null;
  let rtt = null;
  let bwOut = null;
  if (pair) {
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    relay = local?.candidateType === "relay" || remote?.candidateType === "relay";
    rtt = num(pair.currentRoundTripTime);
    const bw = num(pair.availableOutgoingBitrate);
    bwOut = bw === null ? null : bw / 1000;
  }
  // The link's own readings when the caller keeps them (their spans reach back over
  // several samples); else the two reports alone (a span only from a report between them).
  const prevSent = sent ? sent.prev : prevReport ? sentByKind(prevReport) : null;
  const lossOut = sentLoss(prevSent, sent ? sent.cur : sentByKind(report, prevSent));
  let remoteRtt = null;
  let t = 0; // the report's time: its newest entry's (ms since the epoch)
  report.forEach((s) => {
    t = Math.max(t, num(s.timestamp) ?? 0);
    if (s.type !== "remote-inbound-rtp") return;
    const r = num(s.roundTripTime);
    if (r !== null) remoteRtt = Math.max(remoteRtt ?? 0, r);
  });
  if (rtt === null) rtt = remoteRtt;
  const inVideo = first(report, "inbound-rtp", "video");
  const inAudio = first(report, "inbound-rtp", "audio");
  const outVideo = first(report, "outbound-rtp", "video");
  const jitter = num(inVideo?.jitter) ?? num(inAudio?.jitter);
  const qlr = outVideo && QLR.includes(outVideo.qualityLimitationReason) ? outVideo.qualityLimitationReason : null;

  /** @type {Sample} */
  const sample = {
    peer,
    t: Math.round(now ?? (t || Date.now())),
    rtt: clamp(rtt === null ? null : rtt * 1000, 0, 60000, 1),
    loss_in: null,
    loss_out: clamp(lossOut, 0, 1, 4),
    jitter: clamp(jitter === null ? null : jitter * 1000, 0, 60000, 1),
    bw_out: clamp(bwOut, 0, 1e7, 1),
    send_kbps: null,
    recv_kbps: null,
    qlr,
    fps_in: null,
    decoded: null,
    dropped: null,
    freezes: null,
    freeze_ms: null,
    conceal: null,
    relay,
    level: level && LEVELS.includes(level) ? /** @type {SendLevel} */ (level) : null,
    pred: clamp(num(pred), 0, 1, 4),
    events: events.filter((e) => EVENT_RE.test(e)).slice(-MAX_EVENTS),
  };
  if (!prevReport) return sample;

  const inbound = deltas(prevReport, report, "inbound-rtp", null,
    ["packetsLost", "packetsReceived", "bytesReceived", "headerBytesReceived"]);
  if (inbound.entries) {
    const { packetsLost: lost, packetsReceived: got } = inbound.sums;
    sample.loss_in = lost + got > 0 ? clamp(lost / (lost + got), 0, 1, 4) : null;
    if (inbound.seconds > 0) {
      const bits = (inbound.sums.bytesReceived + inbound.sums.headerBytesReceived) * 8;
      sample.recv_kbps = clamp(bits / 1000 / inbound.seconds, 0, 1e7, 1);
    }
  }
  const outbound = deltas(prevReport, report, "outbound-rtp", null, ["bytesSent", "headerBytesSent"]);
  if (outbound.entries && outbound.seconds > 0) {
    const bits = (outbound.sums.bytesSent + outbound.sums.headerBytesSent) * 8;
    sample.send_kbps = clamp(bits / 1000 / outbound.seconds, 0, 1e7, 1);
  }
  const video = deltas(prevReport, report, "inbound-rtp", "video",
    ["framesDecoded", "framesDropped", "freezeCount", "totalFreezesDuration"]);
  if (video.entries) {
    sample.decoded = Math.min(1e6, Math.round(video.sums.framesDecoded));
    sample.dropped = Math.min(1e6, Math.round(video.sums.framesDropped));
    sample.freezes = Math.min(1e4, Math.round(video.sums.freezeCount));
    sample.freeze_ms = clamp(video.sums.totalFreezesDuration * 1000, 0, 3600000, 0);
    if (video.seconds > 0) sample.fps_in = clamp(video.sums.framesDecoded / video.seconds, 0, 1000, 2);
  }
  const audio = deltas(prevReport, report, "inbound-rtp", "audio", ["concealedSamples", "totalSamplesReceived"]);
  if (audio.entries && audio.sums.totalSamplesReceived > 0) {
    sample.conceal = clamp(audio.sums.concealedSamples / audio.sums.totalSamplesReceived, 0, 1, 4);
  }
  return sample;
}
