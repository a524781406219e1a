// Perfect negotiation (W3C WebRTC 1.0 §10.7; webrtc/samples perfect-negotiation)
// for one RTCPeerConnection. No DOM: the pc and the send function are injected,
// so the glare handling is unit-tested with node --test against a fake pc.
//
// The polite side yields on glare (rolls back its own offer, takes the other's);
// the impolite side ignores the colliding offer. Either side may renegotiate at
// any time (tracks added, screen share, ICE restart) and the call never breaks.

/**
 * @typedef {{type: "offer"|"answer", sdp: string}} Description
 * @typedef {{candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null} | null} Candidate
 * @typedef {{kind: "description", description: Description, restart?: boolean, fresh?: boolean}
 *          | {kind: "candidate", candidate: Candidate}} Signal
 * @typedef {{
 *   signalingState: string,
 *   remoteDescription: object|null,
 *   localDescription: {type: string, sdp: string}|null,
 *   setLocalDescription: (d?: Description) => Promise<void>,
 *   setRemoteDescription: (d: Description) => Promise<void>,
 *   addIceCandidate: (c: Candidate) => Promise<void>,
 *   restartIce?: () => void,
 *   onnegotiationneeded: ((ev: any) => any) | null,
 *   onicecandidate: ((ev: any) => any) | null,
 * }} PeerConnectionLike
 */

export class Negotiator {
  /**
   * @param {PeerConnectionLike} pc
   * @param {{polite: boolean, send: (signal: Signal) => void, onError?: (e: Error) => void,
   *          fresh?: boolean}} opts  fresh: this connection replaces a stuck one; the
   *          first offer says so, and the other side replaces its own to answer it
   */
  constructor(pc, { polite, send, onError, fresh = false }) {
    this.pc = pc;
    this.polite = polite;
    this.send = send;
    this.onError = onError ?? ((e) => console.warn("negotiation", e));
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.restarting = false;
    this.fresh = fresh;
    /** @type {Candidate[]} candidates that came before any remote description */
    this.pendingCandidates = [];
    // Signals are applied one at a time, in arrival order.
    this.chain = Promise.resolve();
    this.offersSent = 0;
    this.collisions = 0; // glare seen (for diagnostics and tests)
    pc.onnegotiationneeded = () => this.negotiate();
    pc.onicecandidate = ({ candidate }) => {
      const init = candidate && typeof candidate.toJSON === "function" ? candidate.toJSON() : candidate;
      this.send({ kind: "candidate", candidate: init ?? null });
    };
  }

  async negotiate() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      // A remote offer may have arrived while ours was being made.
      if (this.pc.signalingState !== "have-local-offer") return;
      this.offersSent += 1;
      /** @type {Signal & {kind: "description"}} */
      const signal = { kind: "description", description: plain(this.pc.localDescription) };
      if (this.restarting) signal.restart = true;
      if (this.fresh) signal.fresh = true;
      this.fresh = false;
      this.send(signal);
    } catch (err) {
      this.onError(err);
    } finally {
      this.makingOffer = false;
      this.restarting = false;
    }
  }

  /** Restart ICE (the network path changed); negotiationneeded follows. */
  restartIce() {
    this.restarting = true;
    if (typeof this.pc.restartIce === "function") this.pc.restartIce();
    else this.negotiate();
  }

  /** @param {Signal} signal @returns {Promise<void>} settles once applied */
  receive(signal) {
    this.chain = this.chain.then(() => this.apply(signal)).catch((err) => this.onError(err));
    return this.chain;
  }

  /** @param {Signal} signal */
  async apply(signal) {
    const pc = this.pc;
    if (signal.kind === "description") {
      const description = signal.description;
      const readyForOffer =
        !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswer);
      const offerCollision = description.type === "offer" && !readyForOffer;
      if (offerCollision) this.collisions += 1;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswer = description.type === "answer";
      try {
        // On glare the polite side's setRemoteDescription rolls back its own
        // offer implicitly (all current browsers do).
        await pc.setRemoteDescription(description);
      } finally {
        this.settingRemoteAnswer = false;
      }
      await this.flushCandidates();
      if (description.type === "offer") {
        this.fresh = false; // they offered first: there is nothing of ours to replace
        await pc.setLocalDescription();
        this.send({ kind: "description", description: plain(pc.localDescription) });
      }
      return;
    }
    if (!pc.remoteDescription) {
      this.pendingCandidates.push(signal.candidate);
      return;
    }
    await this.addCandidate(signal.candidate);
  }

  async flushCandidates() {
    const queued = this.pendingCandidates.splice(0);
    for (const candidate of queued) await this.addCandidate(candidate);
  }

  async addCandidate(candidate) {
    // End-of-candidates needs no action: ICE completes without it.
    if (!candidate || !candidate.candidate) return;
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      // Candidates of an offer we ignored are expected to fail.
      if (!this.ignoreOffer) throw err;
    }
  }
}

/** Polite/impolite is decided by peer id order, the same on both ends. */
export function isPolite(selfId, remoteId) {
  return selfId < remoteId;
}

function plain(description) {
  return description ? { type: description.type, sdp: description.sdp } : description;
}
