// Link quality from successive getStats samples. No DOM: unit-tested.

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
 * What we send to one peer, from its link quality: full video, then reduced video
 * (lower bitrate and resolution), then audio only; and back up when the link recovers.
 * Steps down after 2 poor samples in a row, up after 3 good ones (hysteresis, so a
 * single bad sample does not make the picture flap).
 */
export const SEND_LEVELS = /** @type {const} */ (["full", "reduced", "audio-only"]);

export class SendPolicy {
  constructor({ downAfter = 2, upAfter = 3 } = {}) {
    this.level = 0;
    this.poor = 0;
    this.good = 0;
    this.downAfter = downAfter;
    this.upAfter = upAfter;
  }

  /** @param {LinkQuality} quality @returns {boolean} whether the level changed */
  observe(quality) {
    if (quality === "poor") { this.poor += 1; this.good = 0; }
    else if (quality === "good") { this.good += 1; this.poor = 0; }
    else { this.poor = 0; this.good = 0; } // fair/unknown: hold
    if (this.poor >= this.downAfter && this.level < SEND_LEVELS.length - 1) {
      this.level += 1; this.poor = 0; return true;
    }
    if (this.good >= this.upAfter && this.level > 0) {
      this.level -= 1; this.good = 0; return true;
    }
    return false;
  }

  get name() { return SEND_LEVELS[this.level]; }
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
