// One RTCPeerConnection to one remote peer: tracks, perfect negotiation, ICE
// restart, connection state and stats. No DOM: the UI subscribes to callbacks.
import { Negotiator, isPolite } from "./negotiation.js";
import { STABLE_MS } from "./recovery.js";
import { signalDescription, signalIce } from "./protocol.js";
import { LEVEL_ENCODINGS } from "./call-quality.js";
import { CONTROL_ID, CONTROL_LABEL, parseControl } from "./media-control.js";
import { heardKey, sentByKind } from "./stats-sample.js";

/**
 * @typedef {{ice_servers: {urls: string[], username?: string, credential?: string}[],
 *            ice_transport_policy: "all"|"relay", expires_at: number|null}} IceConfig
 * @typedef {"new"|"connecting"|"connected"|"disconnected"|"failed"|"closed"} PeerLinkState
 */

const DISCONNECTED_RESTART_MS = 3000;
// A link not connected this long after it was set up (or after the last kick)
// is stuck: a signal was lost, a collision left both sides waiting, or the
// connection itself is wedged (an ICE restart on both sides did not bring one
// back in CI once). The impolite side replaces its RTCPeerConnection with a new
// one and the polite side follows its "fresh" offer. The polite side waits
// longer, so the two do not kick at once; if the other has no connection at all
// (our first offer was lost), its kick (rollback, ICE restart) offers again.
export const CONNECT_WATCHDOG_MS = 10000;
export const POLITE_WATCHDOG_MS = 15000;
// An ICE restart of ours that has not brought the link back (ICE not connected) this
// long after it was made is tried again, with recovery's choice at that moment. Without
// it a restart that ends with no working pair (a relay-only connection whose TURN
// allocation was refused or lost) leaves ICE "disconnected" with no further state
// change, and nothing else would ever retry (CI: both sides moved to the relay at once,
// then no ICE event and no frame for 45 s). A restart here connects in 0.05-0.3 s.
export const RESTART_WATCHDOG_MS = 10000;

// Nothing new from the peer this long (no RTP, no RTCP, no ICE check on the selected
// pair) while ICE still says connected: the path is dead and ICE has not seen it yet.
// Chromium kept a blocked pair "connected" 7.5-7.8 s into a blackout (the relay-switch
// test); until then the send ladder read the bitrate estimate, which decays without
// feedback, as congestion and stepped to low, then audio only, so video came back
// seconds after the path did. The peer sends audio about every 20 ms, and receiver
// reports and ICE checks at least every few seconds.
export const SILENT_MS = 1500;

/** @param {IceConfig} ice @returns {RTCConfiguration} */
export function rtcConfiguration(ice) {
  return {
    iceServers: (ice?.ice_servers ?? []).map((s) => ({ ...s })),
    iceTransportPolicy: ice?.ice_transport_policy === "relay" ? "relay" : "all",
    bundlePolicy: "max-bundle",
  };
}

export class Peer {
  /**
   * @param {{selfId: string, remoteId: string, ice: IceConfig, send: (frame: object) => void,
   *          onStream: (stream: MediaStream) => void, onState: (state: PeerLinkState) => void,
   *          onStuck?: () => void, fresh?: boolean,
   *          onControl?: (msg: import("./media-control.js").ControlMessage) => void,
   *          onControlOpen?: () => void,
   *          onRecover?: (peer: Peer, why: {stalled: boolean}) => import("./recovery.js").Recovery}} opts
   *   onStuck: the impolite side's watchdog asks for this connection to be replaced;
   *   fresh: this one replaces a stuck one (its first offer says so);
   *   onControl / onControlOpen: the media-control channel (a checked message; open);
   *   onRecover: the link broke (or our restart stalled): which recovery (static/js/recovery.js);
   *     without it, an ICE restart
   */
  constructor({ selfId, remoteId, ice, send, onStream, onState, onStuck, fresh = false, onControl, onControlOpen,
    onRecover }) {
    this.remoteId = remoteId;
    this.ice = ice;
    this.onRecover = onRecover;
    /** ICE restarts since the link last held STABLE_MS (recovery.js counts on it) */
    this.restarts = 0;
    /** this connection was moved to the TURN relay only (a recovery "relay") */
    this.relayOnly = false;
    this.onState = onState;
    this.onStuck = onStuck;
    this.pc = new RTCPeerConnection(rtcConfiguration(ice));
    /** @type {import("./call-quality.js").SendLevel} what we send this peer */
    this.sendLevel = "full";
    /** the peer wants our video (it asks over media-control: low bandwidth, tile not visible) */
    this.remoteWantsVideo = true;
    this.encodingChain = Promise.resolve();
    /** @type {import("./stats-sample.js").SentByKind|null} the last stats() reading's (its loss spans) */
    this.lastSent = null;
    /** stats-sample.js heardKey of the last reading that saw something new from the peer, and when */
    this.heard = "";
    /** @type {number|null} */
    this.heardAt = null;
    /** the level's encodings were set once the link first connected (stateChanged) */
    this.encodingsApplied = false;
    // Created before any offer on both sides, so the first offer carries it.
    this.control = this.pc.createDataChannel(CONTROL_LABEL, { negotiated: true, id: CONTROL_ID });
    this.control.onmessage = ({ data }) => {
      const msg = parseControl(data);
      if (msg) onControl?.(msg);
    };
    this.control.onopen = () => onControlOpen?.();
    this.remoteStream = new MediaStream();
    /** @type {Map<string, RTCRtpSender>} kind -> sender */
    this.senders = new Map();
    this.negotiator = new Negotiator(this.pc, {
      polite: isPolite(selfId, remoteId),
      fresh,
      send: (signal) => {
        if (signal.kind === "description") {
          const kind = signal.description.type === "offer" ? "offer" : "answer";
          send(signalDescription(kind, remoteId, signal.description.sdp,
            { restart: signal.restart, fresh: signal.fresh }));
        } else if (signal.candidate) {
          send(signalIce(remoteId, signal.candidate));
        }
      },
    });
    this.pc.ontrack = ({ track, streams }) => {
      const stream = streams[0] ?? this.remoteStream;
      if (!streams[0]) this.remoteStream.addTrack(track);
      onStream(stream);
    };
    this.pc.onconnectionstatechange = () => this.stateChanged();
    this.pc.oniceconnectionstatechange = () => {
      // "failed" needs a new path: restart ICE (the impolite side's offer wins
      // if both restart at once). "disconnected" often heals by itself (a lost
      // burst); if it lasts, the path changed (new Wi-Fi, VPN): restart sooner
      // than the ~30 s Chromium takes to declare "failed".
      // Which recovery, and whether the direct path keeps failing (then the relay),
      // is recovery.js's choice through onRecover.
      const ice = this.pc.iceConnectionState;
      clearTimeout(this.disconnectTimer);
      clearTimeout(this.stableTimer);
      if (ice === "connected" || ice === "completed") {
        clearTimeout(this.restartTimer);
        this.stableTimer = setTimeout(() => { this.restarts = 0; }, STABLE_MS);
      } else if (ice === "failed") this.recover();
      else if (ice === "disconnected") {
        this.disconnectTimer = setTimeout(() => {
          if (this.pc.iceConnectionState === "disconnected") this.recover();
        }, DISCONNECTED_RESTART_MS);
      }
    };
    this.kicks = 0; // watchdog restarts (diagnostics and tests)
    this.wasBroken = false; // the link dropped and has not come back yet (call.js says so)
    this.armWatchdog();
  }

  /** ICE has a working pair (media can flow). */
  linkUp() {
    const ice = this.pc.iceConnectionState;
    return ice === "connected" || ice === "completed";
  }

  stateChanged() {
    if (this.pc.connectionState === "connected") {
      clearTimeout(this.connectTimer);
      // The level's encodings from the first connection on, not only after a level
      // change: `full` otherwise sent whatever Chromium chose (~1.8 Mbit/s, not 1.2).
      if (!this.encodingsApplied) {
        this.encodingsApplied = true;
        this.applyEncodings();
      }
    }
    this.onState(/** @type {PeerLinkState} */ (this.pc.connectionState));
  }

  armWatchdog() {
    clearTimeout(this.connectTimer);
    const wait = this.negotiator.polite ? POLITE_WATCHDOG_MS : CONNECT_WATCHDOG_MS;
    this.connectTimer = setTimeout(() => this.kickIfStuck(), wait);
  }

  /**
   * Not connected yet while the signaling socket stayed up (so nothing else will
   * retry). The impolite side asks for a new connection (onStuck); the polite side,
   * or one without onStuck, drops an offer of its own that was never answered and
   * restarts ICE, which negotiates afresh, again every watchdog period until connected.
   */
  async kickIfStuck() {
    const state = this.pc.connectionState;
    if (state === "connected" || state === "closed") return;
    this.kicks += 1;
    if (!this.negotiator.polite && this.onStuck) {
      this.onStuck();
      return;
    }
    if (this.pc.signalingState === "have-local-offer" && !this.negotiator.makingOffer) {
      try {
        await this.pc.setLocalDescription({ type: "rollback" });
      } catch (err) {
        console.warn("rollback", err);
      }
    }
    this.negotiator.restartIce();
    this.armWatchdog();
  }

  /** @param {MediaStream} stream */
  addLocalStream(stream) {
    for (const track of stream.getTracks()) {
      if (this.senders.has(track.kind)) continue;
      this.senders.set(track.kind, this.pc.addTrack(track, stream));
    }
  }

  /** Nothing to send (no camera/microphone): still receive the others. */
  receiveOnly() {
    if (this.pc.getTransceivers().length) return;
    this.pc.addTransceiver("audio", { direction: "recvonly" });
    this.pc.addTransceiver("video", { direction: "recvonly" });
  }

  /**
   * What we send this peer: a ladder level (call-quality.js LEVEL_ENCODINGS: bitrate,
   * resolution and frame rate; "audio" pauses the video encoding). No renegotiation.
   * @param {import("./call-quality.js").SendLevel} level
   */
  setSendLevel(level) {
    this.sendLevel = level;
    return this.applyEncodings();
  }

  /** The peer asks us to stop (false) or resume (true) sending it video. @param {boolean} want */
  setRemoteWantsVideo(want) {
    this.remoteWantsVideo = want;
    return this.applyEncodings();
  }

  /** One setParameters at a time (each needs the transaction of its own getParameters). */
  applyEncodings() {
    this.encodingChain = this.encodingChain.then(async () => {
      const video = this.senders.get("video");
      if (video) {
        const params = video.getParameters();
        if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
        const want = LEVEL_ENCODINGS[this.sendLevel];
        for (const enc of params.encodings) {
          enc.active = this.sendLevel !== "audio" && this.remoteWantsVideo;
          if (want.maxBitrate) enc.maxBitrate = want.maxBitrate;
          if (want.scaleResolutionDownBy) enc.scaleResolutionDownBy = want.scaleResolutionDownBy;
          if (want.maxFramerate) enc.maxFramerate = want.maxFramerate;
        }
        try { await video.setParameters(params); } catch (err) { console.warn("setParameters", err); }
      }
      // Audio always stays on and goes first when the path is congested.
      const audio = this.senders.get("audio");
      if (audio && !this.audioPrioritised) {
        const params = audio.getParameters();
        if (params.encodings?.length) {
          for (const enc of params.encodings) { enc.priority = "high"; enc.networkPriority = "high"; }
          try { await audio.setParameters(params); this.audioPrioritised = true; } catch (err) { console.warn("audio priority", err); }
        }
      }
    });
    return this.encodingChain;
  }

  /** A media-control message to the peer, if the channel is open. @param {string} text */
  sendControl(text) {
    if (this.control.readyState !== "open") return false;
    try { this.control.send(text); } catch { return false; }
    return true;
  }

  /** Swap the outgoing video (camera <-> screen, another camera) without renegotiating. */
  async replaceVideo(track) {
    await this.senders.get("video")?.replaceTrack(track);
  }

  /** Swap the outgoing audio (another microphone) without renegotiating. */
  async replaceAudio(track) {
    await this.senders.get("audio")?.replaceTrack(track);
  }

  /** @param {object} frame a signal.* frame from the server */
  receive(frame) {
    if (frame.type === "signal.ice") {
      return this.negotiator.receive({ kind: "candidate", candidate: frame.candidate });
    }
    const type = frame.type === "signal.offer" ? "offer" : "answer";
    return this.negotiator.receive({ kind: "description", description: { type, sdp: frame.sdp } });
  }

  /** After our signaling socket came back: restart ICE where the path is broken. */
  recoverIfBroken() {
    const ice = this.pc.iceConnectionState;
    const stuck = this.pc.signalingState !== "stable" && !this.negotiator.makingOffer;
    if (ice === "failed" || ice === "disconnected" || stuck) {
      this.restartIce();
      return true;
    }
    return false;
  }

  /** An ICE restart of ours, counted, and watched until the link is back (RESTART_WATCHDOG_MS). */
  restartIce() {
    this.restarts += 1;
    this.negotiator.restartIce();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      const ice = this.pc.iceConnectionState;
      if (ice !== "connected" && ice !== "completed" && ice !== "closed") this.recover({ stalled: true });
    }, RESTART_WATCHDOG_MS);
  }

  /**
   * The link broke: do what recovery.js chooses (asked through onRecover). An ICE
   * restart, or the relay (this connection only: relay candidates, then an ICE
   * restart). Socket resume and rejoin are the call controller's to carry out.
   * @param {{stalled?: boolean}} [why] stalled: our last restart did not bring the link back
   * @returns {import("./recovery.js").Recovery}
   */
  recover({ stalled = false } = {}) {
    const choice = this.onRecover?.(this, { stalled }) ?? { choice: "ice-restart", reason: this.pc.iceConnectionState };
    if (choice.choice === "relay") {
      this.relayOnly = true;
      this.setIceConfig(this.ice);
    }
    if (choice.choice === "relay" || choice.choice === "ice-restart") this.restartIce();
    return choice;
  }

  setIceConfig(ice) {
    this.ice = ice;
    /** @type {RTCConfiguration} */
    const config = rtcConfiguration(ice);
    if (this.relayOnly) config.iceTransportPolicy = "relay";
    try { this.pc.setConfiguration(config); } catch (err) { console.warn("setConfiguration", err); }
  }

  /** Inbound video and link numbers from getStats (for the quality badge and tests). */
  async stats() {
    const report = await this.pc.getStats();
    const t = Date.now();
    const heard = heardKey(report);
    if (heard !== this.heard || this.heardAt === null) {
      this.heard = heard;
      this.heardAt = t;
    }
    // silent: the link is up by ICE's word but nothing came for SILENT_MS (a report
    // without the counters tells nothing: never silent).
    const silent = heard !== "" && t - this.heardAt >= SILENT_MS;
    const out = { framesDecoded: 0, packetsLost: 0, packetsReceived: 0, rtt: null, jitter: null, fps: null, relay: false,
      audioLevel: 0, remoteLoss: null, bwOut: null, qlr: null, t, silent,
      sent: sentByKind(report, this.lastSent, { outage: !this.linkUp() || silent }) };
    this.lastSent = out.sent;
    /** @type {RTCIceCandidatePairStats|null} */
    let selectedPair = null;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.framesDecoded += s.framesDecoded ?? 0;
        out.fps = s.framesPerSecond ?? out.fps;
        out.jitter = s.jitter ?? out.jitter;
      }
      if (s.type === "inbound-rtp") {
        out.packetsLost += s.packetsLost ?? 0;
        out.packetsReceived += s.packetsReceived ?? 0;
      }
      if (s.type === "inbound-rtp" && s.kind === "audio") out.audioLevel = s.audioLevel ?? 0;
      // What the other side reports about receiving us: their end of the link.
      if (s.type === "remote-inbound-rtp" && typeof s.fractionLost === "number") {
        out.remoteLoss = Math.max(out.remoteLoss ?? 0, s.fractionLost);
      }
      if (s.type === "outbound-rtp" && s.kind === "video" && s.qualityLimitationReason) out.qlr = s.qualityLimitationReason;
      if (s.type === "transport" && s.selectedCandidatePairId) selectedPair = report.get(s.selectedCandidatePairId);
    });
    if (!selectedPair) report.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") selectedPair = s; });
    if (selectedPair) {
      out.rtt = selectedPair.currentRoundTripTime ?? null;
      out.bwOut = selectedPair.availableOutgoingBitrate ?? null;
      const local = report.get(selectedPair.localCandidateId);
      out.relay = local?.candidateType === "relay";
    }
    return out;
  }

  close() {
    clearTimeout(this.disconnectTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.connectTimer);
    clearTimeout(this.restartTimer);
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.control.onmessage = null;
    this.control.onopen = null;
    this.pc.close();
    this.onState("closed");
  }
}
