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
