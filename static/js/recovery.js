// Which recovery a broken link gets (docs/adaptation.md, "Recovery"). Pure: the
// call controller and Peer describe the situation, this says what to do and why.
//
//   socket-resume  our signaling socket is down: nothing can be renegotiated until it
//                  resumes (the resume then restarts ICE where the path broke); media
//                  that still flows peer to peer is left alone.
//   rejoin         the server refused our resume (a new peer id) or the other peer is
//                  gone: connections are rebuilt from scratch (or the tile dropped).
//   relay          the direct path failed again after RELAY_AFTER ICE restarts (it
//                  came back and broke, or never came back): that connection goes
//                  through the TURN relay only (iceTransportPolicy "relay") and
//                  restarts ICE. Needs a TURN server in the ICE configuration.
//   ice-restart    the link is disconnected (for DISCONNECTED_RESTART_MS) or failed, or
//                  our last ICE restart has not brought it back within
//                  RESTART_WATCHDOG_MS (peer.js): new candidates on the same connection.
//   none           nothing is broken (or nothing more can be tried).

/** ICE restarts without a lasting connection before the pair is moved to the relay. */
export const RELAY_AFTER = 2;
/** A connection that holds this long after a restart counts as recovered. */
export const STABLE_MS = 10000;

/**
 * @typedef {"none"|"ice-restart"|"relay"|"socket-resume"|"rejoin"} RecoveryChoice
 * @typedef {{
 *   socket: string,            // the room socket: open, connecting, reconnecting, offline, closed
 *   ice: string,               // the link's iceConnectionState
 *   restarts: number,          // ICE restarts since the link last held STABLE_MS
 *   relayOnly: boolean,        // the link already uses only the relay
 *   turn: boolean,             // a TURN server is in the ICE configuration
 *   peerPresent?: boolean,     // the other peer is still in the room (default true)
 *   resumeRefused?: boolean,   // our socket came back with a new peer id
 *   stalled?: boolean,         // our last ICE restart has not brought the link back in time
 * }} LinkSituation
 * @typedef {{choice: RecoveryChoice, reason: string}} Recovery
 */

/**
 * @param {LinkSituation} s
 * @returns {Recovery}
 */
export function chooseRecovery(s) {
  if (s.resumeRefused) return { choice: "rejoin", reason: "resume-refused" };
  if (s.peerPresent === false) return { choice: "rejoin", reason: "peer-gone" };
  if (s.socket === "offline" || s.socket === "reconnecting" || s.socket === "connecting") {
    return { choice: "socket-resume", reason: s.socket === "offline" ? "offline" : "socket-down" };
  }
  const up = s.ice === "connected" || s.ice === "completed";
  // A stalled restart may leave ICE "checking" or "new" (no pair at all), not only broken.
  const broken = s.ice === "failed" || s.ice === "disconnected" || (Boolean(s.stalled) && !up && s.ice !== "closed");
  if (!broken) return { choice: "none", reason: "connected" };
  if (s.restarts >= RELAY_AFTER && !s.relayOnly && s.turn) {
    return { choice: "relay", reason: `direct-failed-${s.restarts}` };
  }
  if (s.relayOnly && s.restarts >= RELAY_AFTER) return { choice: "ice-restart", reason: "relay-failed" };
  return { choice: "ice-restart", reason: s.stalled ? "restart-stalled" : s.ice };
}

/** The event logged for a choice (docs/protocol.md, a sample's `events`). @param {Recovery} r */
export const recoveryEvent = (r) => `recover:${r.choice}:${r.reason}`;

/** Whether an ICE configuration names a TURN server. @param {{ice_servers?: {urls: string[]|string}[]}|null|undefined} ice */
export function hasTurn(ice) {
  return (ice?.ice_servers ?? []).some((s) => [s.urls].flat().some((u) => /^turns?:/.test(String(u))));
}
