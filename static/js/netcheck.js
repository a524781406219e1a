// The connectivity check before joining: which ICE candidates this browser can
// gather with the room's STUN/TURN servers (host, srflx, relay). No DOM.

/**
 * @typedef {{host: boolean, srflx: boolean, relay: boolean, stun: boolean, turn: boolean}} Connectivity
 *   host/srflx/relay: a candidate of that type was gathered; stun/turn: such servers are configured
 */

/** @param {RTCIceCandidate|{candidate: string, type?: string|null}} c @returns {string} */
export function candidateType(c) {
  if (c.type) return c.type;
  const m = / typ (\w+)/.exec(c.candidate ?? "");
  return m ? m[1] : "";
}

/**
 * Gather candidates once (a data channel offer, never sent anywhere).
 * @param {import("./peer.js").IceConfig|null} ice
 * @param {{PC?: typeof RTCPeerConnection, timeoutMs?: number}} [opts]
 * @returns {Promise<Connectivity>}
 */
export async function checkConnectivity(ice, { PC = globalThis.RTCPeerConnection, timeoutMs = 6000 } = {}) {
  const servers = ice?.ice_servers ?? [];
  const urls = servers.flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
  const out = {
    host: false, srflx: false, relay: false,
    stun: urls.some((u) => /^stuns?:/.test(u)) || urls.some((u) => /^turns?:/.test(u)),
    turn: urls.some((u) => /^turns?:/.test(u)),
  };
  const pc = new PC({ iceServers: servers.map((s) => ({ ...s })), iceTransportPolicy: "all" });
  try {
    const done = new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      pc.onicecandidate = (e) => {
        if (!e.candidate) { clearTimeout(timer); resolve(undefined); return; }
        const type = candidateType(e.candidate);
        if (type === "host" || type === "srflx" || type === "relay") out[type] = true;
      };
    });
    pc.createDataChannel("check");
    await pc.setLocalDescription(await pc.createOffer());
    await done;
  } finally {
    pc.close();
  }
  return out;
}

/**
 * What the check found, in words, one line per kind of path.
 * @param {Connectivity} c @returns {{ok: boolean, text: string}[]}
 */
export function describeConnectivity(c) {
  return [
    { ok: c.host, text: c.host ? "Local network: ready (host candidates)." : "No local network address was found." },
    c.stun
      ? { ok: c.srflx, text: c.srflx ? "Public address found through STUN (srflx)." : "No public address through STUN: calls across networks may need TURN." }
      : { ok: true, text: "No STUN server is configured: calls work on the same network only, unless TURN is set." },
    c.turn
      ? { ok: c.relay, text: c.relay ? "The TURN relay is reachable (relay candidates)." : "The TURN relay is not reachable: behind a strict firewall the call may fail." }
      : { ok: true, text: "No TURN relay is configured on this server." },
  ];
}
