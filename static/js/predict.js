// Freeze prediction in the browser: the features of one link's last samples and
// the exported logistic model (static/js/quality-model.json, trained by
// `manage.py quality_train` on lab recordings). No DOM: unit-tested with node.
// Every formula mirrors quality/features.py exactly; tests/js/predict.test.mjs
// checks both give the same probabilities on vectors the Python side exports.

/**
 * @typedef {{peer: string, t: number} & Record<string, any>} Sample one call.stats sample (docs/protocol.md)
 * @typedef {{version: number, kind: string, features: string[], window: number,
 *            max_age_ms: number, horizon_ms: number, mean: number[], scale: number[],
 *            coef: number[], intercept: number, threshold: number}} Model
 */

export const WINDOW = 5;
export const MAX_AGE_MS = 12000;
export const LEVELS = ["full", "reduced", "low", "audio"];
export const FEATURES = [
  "rtt", "rtt_slope", "loss_out", "loss_out_mean", "loss_out_slope", "loss_in",
  "loss_in_slope", "headroom", "bw_out_slope", "send_drop", "jitter", "jitter_slope",
  "fps_drop", "conceal", "freeze_in", "qlr_bandwidth", "qlr_cpu", "level",
];

/** @param {number} x @param {number} lo @param {number} hi */
function clip(x, lo, hi) { return x < lo ? lo : x > hi ? hi : x; }

/**
 * The newest WINDOW samples of one link, none older than MAX_AGE_MS before the newest.
 * @param {Sample[]} samples oldest first @returns {Sample[]}
 */
export function windowOf(samples) {
  const recent = samples.slice(-WINDOW);
  if (recent.length === 0) return recent;
  const newest = recent[recent.length - 1].t;
  return recent.filter((s) => newest - s.t <= MAX_AGE_MS);
}

/** @param {any} s @param {string} key @returns {number|null} */
function num(s, key) {
  const v = s[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Absent values carried forward from earlier in the window, else null.
 * @param {Sample[]} w @param {string} key @returns {(number|null)[]} */
function filled(w, key) {
  /** @type {(number|null)[]} */ const out = [];
  /** @type {number|null} */ let last = null;
  for (const s of w) {
    const v = num(s, key);
    if (v !== null) last = v;
    out.push(last);
  }
  return out;
}

/** Least-squares slope against time in seconds; 0 below two values.
 * @param {Sample[]} w @param {(number|null)[]} values */
function slope(w, values) {
  /** @type {number[]} */ const ts = [];
  /** @type {number[]} */ const vs = [];
  for (let i = 0; i < w.length; i++) {
    const v = values[i];
    if (v !== null) { ts.push(w[i].t / 1000); vs.push(v); }
  }
  const n = ts.length;
  if (n < 2) return 0;
  let tm = 0, vm = 0;
  for (let i = 0; i < n; i++) { tm += ts[i]; vm += vs[i]; }
  tm /= n; vm /= n;
  let num_ = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num_ += (ts[i] - tm) * (vs[i] - vm);
    den += (ts[i] - tm) * (ts[i] - tm);
  }
  return den <= 0 ? 0 : num_ / den;
}

/** @param {(number|null)[]} values @param {number} dflt */
function last(values, dflt) {
  const v = values.length ? values[values.length - 1] : null;
  return v === null ? dflt : v;
}

/**
 * The feature vector (FEATURES order) of one window, oldest sample first.
 * @param {Sample[]} w @returns {number[]}
 */
export function features(w) {
  const rtt = filled(w, "rtt");
  const lossOut = filled(w, "loss_out");
  const lossIn = filled(w, "loss_in");
  const bw = filled(w, "bw_out");
  const send = filled(w, "send_kbps");
  const jitter = filled(w, "jitter");
  const fps = filled(w, "fps_in");
  const conceal = filled(w, "conceal");

  let loSum = 0, loN = 0;
  for (const v of lossOut) if (v !== null) { loSum += v; loN += 1; }
  let bwSum = 0, bwN = 0;
  for (const v of bw) if (v !== null) { bwSum += v; bwN += 1; }
  let sendMax = 0;
  for (const v of send) if (v !== null && v > sendMax) sendMax = v;
  let fpsMax = 0;
  for (const v of fps) if (v !== null && v > fpsMax) fpsMax = v;
  let freezeMs = 0;
  for (const s of w) {
    const f = num(s, "freeze_ms");
    if (f !== null && f > 0) freezeMs += f;
  }

  const bwLast = bw.length ? bw[bw.length - 1] : null;
  const sendLast = last(send, 0);
  const headroom = bwLast === null ? 4 : clip(bwLast / Math.max(sendLast, 30), 0, 4);
  const bwSlope = bwN > 0 ? clip(slope(w, bw) / Math.max(bwSum / bwN, 30), -1, 1) : 0;
  const fpsLast = fps.length ? fps[fps.length - 1] : null;
  const fpsDrop = fpsLast !== null && fpsMax > 0 ? clip(1 - fpsLast / fpsMax, 0, 1) : 0;
  const newest = /** @type {any} */ (w.length ? w[w.length - 1] : {});
  const levelIdx = LEVELS.indexOf(newest.level);

  return [
    last(rtt, 0) / 1000,
    clip(slope(w, rtt) / 1000, -1, 1),
    last(lossOut, 0),
    loN ? loSum / loN : 0,
    clip(slope(w, lossOut), -0.5, 0.5),
    last(lossIn, 0),
    clip(slope(w, lossIn), -0.5, 0.5),
    headroom,
    bwSlope,
    sendMax > 30 ? clip(1 - sendLast / sendMax, 0, 1) : 0,
    last(jitter, 0) / 1000,
    clip(slope(w, jitter) / 1000, -1, 1),
    fpsDrop,
    last(conceal, 0),
    clip(freezeMs / 10000, 0, 1),
    newest.qlr === "bandwidth" ? 1 : 0,
    newest.qlr === "cpu" ? 1 : 0,
    levelIdx >= 0 ? levelIdx / 3 : 0,
  ];
}

/**
 * The model's probability of a freeze within its horizon, for one feature vector.
 * @param {Model} model @param {number[]} x @returns {number}
 */
export function probability(model, x) {
  let z = model.intercept;
  for (let i = 0; i < x.length; i++) z += model.coef[i] * ((x[i] - model.mean[i]) / model.scale[i]);
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * Check a parsed model file: the same features in the same order as this code.
 * @param {any} m @returns {Model}
 */
export function modelCheck(m) {
  const n = FEATURES.length;
  const arr = (/** @type {any} */ a) => Array.isArray(a) && a.length === n && a.every((v) => typeof v === "number" && Number.isFinite(v));
  if (!m || m.kind !== "logistic" || !Array.isArray(m.features) || m.features.join() !== FEATURES.join()
      || !arr(m.mean) || !arr(m.scale) || !arr(m.coef) || typeof m.intercept !== "number"
      || typeof m.threshold !== "number" || m.scale.some((/** @type {number} */ v) => v === 0)) {
    throw new Error("quality model: not a model for these features (retrain with manage.py quality_train)");
  }
  return m;
}

/**
 * Fetch and check the model (no build step: a static JSON file beside this module).
 * @param {string} [url] @param {typeof fetch} [fetchFn] @returns {Promise<Model>}
 */
export async function modelLoad(url = new URL("./quality-model.json", import.meta.url).href, fetchFn = fetch) {
  const res = await fetchFn(url, { cache: "no-cache" });
  if (!res.ok) throw new Error(`quality model: ${url} answered ${res.status}`);
  return modelCheck(await res.json());
}

/**
 * A window of samples per remote peer and the model's probability for each link.
 * `observe` takes one round of samples (one per peer, as call.stats sends them)
 * and returns each peer's probability; samples already seen (same peer and t) are
 * not counted twice.
 */
export class Predictor {
  /** @param {Model} model */
  constructor(model) {
    this.model = model;
    /** @type {Map<string, Sample[]>} */ this.windows = new Map();
  }

  get threshold() { return this.model.threshold; }

  /** @param {Sample[]} samples @returns {Map<string, number>} */
  observe(samples) {
    /** @type {Map<string, number>} */ const out = new Map();
    for (const s of samples) {
      const w = this.windows.get(s.peer) ?? [];
      if (w.length && w[w.length - 1].t >= s.t) {
        out.set(s.peer, this.predict(s.peer));
        continue;
      }
      w.push(s);
      this.windows.set(s.peer, windowOf(w));
      out.set(s.peer, this.predict(s.peer));
    }
    return out;
  }

  /** @param {string} peer @returns {number} */
  predict(peer) {
    const w = this.windows.get(peer);
    if (!w || w.length === 0) return 0;
    return probability(this.model, features(w));
  }

  /** A peer left: forget its window. @param {string} peer */
  forget(peer) { this.windows.delete(peer); }
}

/**
 * The call's predictor (CallController.setPredictor, adaptation mode "predictive"):
 * given one link's telemetry SAMPLEs, oldest first, the model's probability that
 * its video freezes within the horizon.
 * @param {Model} model @returns {(samples: any[]) => number|null}
 */
export function modelPredictor(model) {
  return (samples) => {
    const w = windowOf(samples.filter((s) => s && typeof s.t === "number"));
    return w.length ? probability(model, features(w)) : null;
  };
}
