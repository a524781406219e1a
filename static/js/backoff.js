// Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
// Backoff And Jitter"): the delay is uniform in [0, min(cap, base * 2^attempt)].
// No DOM here: unit-tested with node --test.

/**
 * @param {number} attempt 0 for the first retry
 * @param {{base?: number, cap?: number, random?: () => number}} [opts]
 * @returns {number} milliseconds to wait
 */
export function backoffDelay(attempt, opts = {}) {
  const base = opts.base ?? 500;
  const cap = opts.cap ?? 15000;
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
