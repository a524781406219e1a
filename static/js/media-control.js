// The per-peer "media-control" RTCDataChannel: what a sender tells a receiver about
// the video it sends ({"level", "reason"}) and what a receiver asks of a sender
// ({"want_video"}). One module builds and checks every message, both directions
// (docs/adaptation.md). No DOM: unit-tested.
import { SEND_LEVELS } from "./call-quality.js";

export const CONTROL_LABEL = "media-control";
// Negotiated (both sides create it with the connection), so no extra signaling.
export const CONTROL_ID = 0;
export const CONTROL_MAX_CHARS = 256;
export const STEP_REASONS = /** @type {const} */ (["loss", "rtt", "bandwidth", "cpu", "predicted", "recovered", "manual"]);

/**
 * @typedef {import("./call-quality.js").SendLevel} SendLevel
 * @typedef {import("./call-quality.js").StepReason} StepReason
 * @typedef {{level?: SendLevel, reason?: StepReason, want_video?: boolean}} ControlMessage
 */

/** @param {SendLevel} level @param {StepReason} reason */
export function levelMessage(level, reason) {
  return JSON.stringify({ level, reason });
}

/** @param {boolean} want */
export function wantVideoMessage(want) {
  return JSON.stringify({ want_video: want });
}

/**
 * A message from the peer, checked: null for anything malformed (too long, not JSON,
 * an unknown level or reason, a non-boolean want_video). Unknown keys are ignored.
 * @param {unknown} data @returns {ControlMessage|null}
 */
export function parseControl(data) {
  if (typeof data !== "string" || data.length > CONTROL_MAX_CHARS) return null;
  let raw;
  try { raw = JSON.parse(data); } catch { return null; }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return null;
  /** @type {ControlMessage} */
  const out = {};
  if ("level" in raw) {
    if (!SEND_LEVELS.includes(raw.level) || !STEP_REASONS.includes(raw.reason)) return null;
    out.level = raw.level;
    out.reason = raw.reason;
  }
  if ("want_video" in raw) {
    if (typeof raw.want_video !== "boolean") return null;
    out.want_video = raw.want_video;
  }
  return "level" in out || "want_video" in out ? out : null;
}
