// The call, without the DOM: state, the mesh of peers and their lifecycle, local
// media and devices, stats and quality, TURN refresh, raise hand and reactions,
// and how a call ends. It talks to the room socket through protocol.js frames and
// tells a view (call-ui.js in the page, a recorder in tests/js) what to show.
import { Peer } from "./peer.js";
import { isPolite } from "./negotiation.js";
import * as media from "./media.js";
import { LADDER_DEFAULTS, SendLadder, blame, classifyLink, loudest, senderView } from "./call-quality.js";
import { levelMessage, wantVideoMessage } from "./media-control.js";
import * as proto from "./protocol.js";
import { sampleFrom, sentByKind } from "./stats-sample.js";
import { chooseRecovery, hasTurn, recoveryEvent } from "./recovery.js";

const { IN } = proto;
export const STATS_EVERY_MS = 2000;
const SIGNAL_QUEUE_LIMIT = 500;
export const ENTRY_FALLBACK_MS = 1500;
// A peer the server says timed out keeps its tile while its media still decodes
// (its socket died, not its network path), at most this long.
export const LINGER_MAX_MS = 30000;
export const ADAPT_MODES = /** @type {const} */ (["off", "reactive", "predictive"]);
const EVENTS_KEPT = 1000;
const PREDICT_HISTORY = 15; // sender views per peer kept for a predictor (30 s)

/**
 * @typedef {import("./peer.js").IceConfig} IceConfig
 * @typedef {import("./protocol.js").Frame} Frame
 * @typedef {{peer_id: string, member_id?: number, display_name: string, audio: boolean, video: boolean,
 *            screen: boolean, in_call?: boolean, hand_at?: string|null}} PeerState
 * @typedef {{peer_id: string, name: string, at: string}} Hand
 * @typedef {"prejoin"|"in-call"|"ended"} Phase
 * @typedef {{tone?: "info"|"warn"|"bad"|"ok", sticky?: boolean}} StatusOpts
 * @typedef {{
 *   showPhase: (phase: Phase) => void,
 *   showStatus: (text: string, opts?: StatusOpts) => void,
 *   showCallState: (label: string, state: string) => void,
 *   showMediaError: (text: string) => void,
 *   showDevices: (devices: {cameras: MediaDeviceInfo[], mics: MediaDeviceInfo[], speakers: MediaDeviceInfo[]},
 *                 current: {videoId?: string, audioId?: string}) => void,
 *   setPreview: (stream: MediaStream|null) => void,
 *   setJoinable: (joinable: boolean, why: string) => void,
 *   showRoomSummary: (text: string) => void,
 *   ensureTile: (peerId: string, info: {name: string, self?: boolean}) => void,
 *   setTileStream: (peerId: string, stream: MediaStream|null, opts?: {screen?: boolean}) => void,
 *   setTileLink: (peerId: string, state: string) => void,
 *   setTileQuality: (peerId: string, quality: string) => void,
 *   setTileRemoteVideo: (peerId: string, state: RemoteVideo) => void,
 *   showLowBandwidth: (on: boolean) => void,
 *   setTileMedia: (peerId: string, media: {audio: boolean, video: boolean, screen: boolean}) => void,
 *   removeTile: (peerId: string) => void,
 *   clearTiles: () => void,
 *   showToggles: (t: {mic: boolean, cam: boolean, screen: boolean, hand: boolean, canMic: boolean, canCam: boolean}) => void,
 *   showEnded: (text: string, opts: {rejoin: boolean}) => void,
 *   showHands: (queue: Hand[], selfId: string|null, canLower?: boolean) => void,
 *   showReaction: (r: {peer_id: string, name: string, emoji: string}) => void,
 *   showSpeaker: (peerId: string|null) => void,
 * }} CallView
 * @typedef {{level: import("./call-quality.js").SendLevel|null, reason: string|null,
 *            paused: "low-bandwidth"|"hidden"|null, frozen: boolean}} RemoteVideo what a peer sends
 *   us: its level and why (media-control), why we asked it to pause its video (low-bandwidth
 *   mode, or its tile cannot be seen), whether its video froze without a word
 * @typedef {{t: number, peer: string, event: string}} AdaptEvent
 * @typedef {{openLocalMedia: typeof media.openLocalMedia, openScreen: typeof media.openScreen,
 *            listDevices: typeof media.listDevices, mediaErrorText: typeof media.mediaErrorText}} MediaApi
 */

/**
 * The sentence for a call that ended for good, from the frame that announced it
 * (mod.kicked, mod.banned, session.ended, an error) and/or the close code.
 * @param {Frame|null} notice @param {number|undefined} code
 * @returns {string|null} null: this close does not end the call (4424: the password prompt)
 */
export function endSentence(notice, code) {
  const why = notice?.reason && notice.type !== IN.sessionEnded ? ` Reason: ${notice.reason}.` : "";
  const by = notice?.by ? notice.by : "A moderator";
  if (notice?.type === IN.modKicked || (!notice && code === 4001) || notice?.code === "kicked") {
    return `${notice?.type === IN.modKicked ? by : "A moderator"} removed you from this room.${why} You can come back in 5 minutes with the room's link.`;
  }
  if (notice?.type === IN.modBanned || notice?.code === "banned" || (!notice && code === 4003)) {
    const until = notice?.until ? ` until ${new Date(notice.until).toLocaleString()}` : "";
    const who = notice?.type === IN.modBanned ? by : "A moderator";
    const back = until ? ` You can come back after that.` : " You cannot come back unless a moderator lifts the ban.";
    return `${who} banned you from this room${until}.${why}${back}`;
  }
  if (notice?.type === IN.sessionEnded) {
    return notice.reason === "password_changed"
      ? "Your password was changed, so this session ended. Log in again to come back."
      : "You logged out, so you left this room. Log in again to come back.";
  }
  if (notice?.code === "lobby_rejected") return `A moderator did not let you in.${why} You cannot come back unless they admit you.`;
  switch (code) {
    case 4005: return "This call continues in another tab or window. Reload this page to bring it here.";
    case 4400: return "This page is out of date. Reload it to come back.";
    case 4401: return "You are not logged in (or you logged out). Log in again to come back.";
    case 4403: return "You are no longer a member of this room. You need a new invite to come back.";
    case 4404: return "This room was closed. You cannot come back to it.";
    case 4424: return null;
    default: return code ? `Disconnected from the room (code ${code}). Reload the page to try again.` : null;
  }
}

/** @param {PeerState[]} participants @param {string|null} selfId */
export function describeRoom(participants, selfId) {
  const inCall = participants.filter((p) => p.in_call && p.peer_id !== selfId);
  if (inCall.length === 0) return "Nobody is in the call yet.";
  return `In the call: ${inCall.map((p) => p.display_name).join(", ")}.`;
}

export class CallController {
  /**
   * @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence,
   *          view: CallView, media?: MediaApi, createPeer?: (opts: any) => Peer,
   *          now?: () => number}} deps
   */
  constructor({ socket, presence, view, media: mediaApi = media, createPeer = (o) => new Peer(o), now = () => Date.now() }) {
    this.socket = socket;
    this.presence = presence;
    this.view = view;
    this.media = mediaApi;
    this.createPeer = createPeer;
    this.now = now;
    this.state = {
      /** @type {string|null} */ selfId: null,
      inCall: false,
      /** the call ended for good here (removed, banned, logged out): nothing rejoins */
      ended: false,
      /** the user left the call (chat stays) */
      left: false,
      /** waiting in the lobby: no welcome yet */
      waiting: false,
      previewed: false,
      /** @type {{peer_id: string, token: string}|null} */ resume: null,
      /** @type {IceConfig|null} */ ice: null,
      /** @type {MediaStream|null} */ local: null,
      /** @type {MediaStreamTrack|null} */ screen: null,
      audio: true,
      video: true,
      micMuted: false,
      camOff: false,
      /** @type {Map<string, Peer>} */ peers: new Map(),
      /** @type {Map<string, string>} peer id -> display name, kept after presence forgets */ names: new Map(),
      /** @type {Map<string, number|undefined>} peer id -> member id, kept after presence forgets */ members: new Map(),
      /** @type {Map<string, any>} last stats sample per peer */ samples: new Map(),
      /** @type {Map<string, import("./call-quality.js").LinkQuality>} */ quality: new Map(),
      /** @type {Map<string, SendLadder>} what we send each peer, from our view of its link */ ladders: new Map(),
      /** @type {Map<string, any>} last raw send-side stats per peer (for the sender's view) */ sendStats: new Map(),
      /** @type {Map<string, import("./call-quality.js").SenderView[]>} recent sender views per peer */ views: new Map(),
      /** @type {Map<string, object[]>} recent telemetry SAMPLEs per peer (a predictor's input) */ predictSamples: new Map(),
      /** @type {Map<string, number|null>} the predictor's last probability per peer (telemetry's pred) */ preds: new Map(),
      /** @type {Map<string, RemoteVideo>} what each peer says it sends us */ remote: new Map(),
      /** @type {Map<string, boolean>} whether we want each peer's video (last said) */ wants: new Map(),
      /** @type {Map<string, number>} when we last changed what we want from a peer */ wantsAt: new Map(),
      /** @type {"off"|"reactive"|"predictive"} */ adaptMode: "reactive",
      lowBandwidth: false,
      pageVisible: true,
      stageCovered: false,
      /** @type {Set<string>} peers whose tile is off-screen */ offscreen: new Set(),
      /** @type {AdaptEvent[]} ladder steps and predictions acted on, for the lab and tests */ events: [],
      /** @type {Map<string, string[]>} events per peer not yet taken by a telemetry sample */ pendingEvents: new Map(),
      /** @type {Map<string, number>} peers the server dropped whose media still flows: since when */
      lingering: new Map(),
      /** @type {Map<string, Hand>} raised hands by peer id */ hands: new Map(),
      /** @type {Frame[]} signals that could not be sent while the socket was down */ queue: [],
      /** @type {Frame|null} the frame that announced why we are about to be closed */ notice: null,
      wasDisconnected: false,
      blamed: "none",
      rebuilds: 0, // connections replaced (stuck), for diagnostics and tests
      refreshTimer: 0,
      statsTimer: 0,
      /** @type {{audioId?: string, videoId?: string}} */ choice: {},
    };
    /** Call telemetry: the last getStats() report and SAMPLE per peer (sendTelemetry). */
    this.telemetry = {
      /** @type {Map<string, any>} */ reports: new Map(),
      /** @type {Map<string, import("./stats-sample.js").SentByKind>} the last sample's sentByKind */ sent: new Map(),
      /** @type {Map<string, import("./stats-sample.js").Sample>} */ last: new Map(),
    };
    /** The last signaling events, for diagnosing a stuck negotiation (tests read it). */
    /** @type {string[]} */
    this.trace = [];
    /** @type {((samples: object[]) => number|null)|null} PRED's model (predictive mode) */
    this.predictor = null;
    /** @type {number|null} the probability the ladder steps down at (setPredictor) */
    this.predictDown = null;
  }

  // --- helpers ----------------------------------------------------------------
  /** @param {string} text */
  mark(text) {
    const t = typeof performance !== "undefined" ? performance.now() / 1000 : this.now() / 1000;
    this.trace.push(`${t.toFixed(2)} ${text}`);
    if (this.trace.length > 200) this.trace.shift();
  }

  /** @param {string} what @param {Frame} frame */
  note(what, frame) {
    // An offer's or answer's ICE username fragment tells which ICE generation it starts.
    const ufrag = typeof frame.sdp === "string" ? /a=ice-ufrag:(\S+)/.exec(frame.sdp)?.[1] : undefined;
    this.mark(`${what} ${frame.type} ${frame.to ?? frame.from ?? ""}${frame.restart ? " restart" : ""}${ufrag ? ` ufrag=${ufrag}` : ""}`);
  }

  /** @param {Frame} frame */
  sendSignal(frame) {
    if (frame.type !== IN.ice) this.note("send", frame);
    else if (frame.candidate?.candidate) {
      // Our own candidates, by type and port ("candidate:… udp prio 127.0.0.1 40826 typ host …").
      const c = /(\S+) (\d+) typ (\w+)/.exec(frame.candidate.candidate);
      if (c) this.mark(`cand ${c[3]} ${c[2]} ${frame.candidate.usernameFragment ?? ""} ${frame.to}`);
    }
    if (this.socket.send(frame)) return;
    this.note("queued", frame);
    // The socket is reconnecting: keep it for the resumed session (in order).
    this.state.queue.push(frame);
    if (this.state.queue.length > SIGNAL_QUEUE_LIMIT) this.state.queue.shift();
  }

  /** @param {{audio?: boolean, video?: boolean, screen?: boolean, in_call?: boolean}} changes */
  announce(changes) {
    this.socket.send(proto.presenceUpdate(changes));
  }

  /** @param {string} peerId */
  nameOf(peerId) {
    return this.presence.peers.get(peerId)?.display_name ?? this.state.names.get(peerId) ?? "Someone";
  }

  selfMedia() {
    const s = this.state;
    return { audio: s.audio, video: s.video, screen: Boolean(s.screen) };
  }

  renderToggles() {
    const s = this.state;
    this.view.showToggles({
      mic: s.audio, cam: s.video, screen: Boolean(s.screen),
      hand: Boolean(s.selfId && s.hands.has(s.selfId)),
      canMic: Boolean(s.local?.getAudioTracks().length), canCam: Boolean(s.local?.getVideoTracks().length),
    });
  }

  renderJoinable() {
    const s = this.state;
    if (s.ended) return this.view.setJoinable(false, "");
    if (s.waiting) return this.view.setJoinable(false, "Waiting for a moderator to let you in…");
    if (!s.selfId) return this.view.setJoinable(false, "Connecting to the room…");
    if (!s.previewed) return this.view.setJoinable(false, "Opening your camera and microphone…");
    this.view.setJoinable(true, "");
  }

  renderRoom() {
    if (!this.state.inCall) this.view.showRoomSummary(describeRoom(this.presence.list(), this.state.selfId));
  }

  renderCallState() {
    const s = this.state;
    if (!s.inCall) return;
    const links = [...s.peers.entries()].filter(([id]) => !s.lingering.has(id)).map(([, p]) => p.pc.connectionState);
    const connected = links.filter((st) => st === "connected").length;
    if (this.socket.state === "offline") {
      this.view.showCallState("You are offline", "offline");
    } else if (this.socket.state === "reconnecting") {
      this.view.showCallState("Reconnecting…", "reconnecting");
    } else if (links.length === 0) {
      this.view.showCallState("Waiting for others to join", "open");
    } else if (connected === links.length) {
      this.view.showCallState(`Connected to ${connected} of ${links.length}`, "open");
    } else {
      this.view.showCallState(`Connecting… ${connected} of ${links.length}`, "connecting");
    }
  }

  renderHands() {
    const queue = [...this.state.hands.values()].sort((a, b) => a.at.localeCompare(b.at));
    const role = this.state.selfId ? this.presence.peers.get(this.state.selfId)?.role : undefined;
    this.view.showHands(queue, this.state.selfId, role === "owner" || role === "moderator");
    this.renderToggles();
  }

  // --- peers --------------------------------------------------------------------
  /** @param {string} peerId @param {{fresh?: boolean}} [opts] fresh: replaces a stuck one */
  ensurePeer(peerId, { fresh = false } = {}) {
    const s = this.state;
    let peer = s.peers.get(peerId);
    if (peer) return peer;
    const info = this.presence.peers.get(peerId);
    this.view.ensureTile(peerId, { name: this.nameOf(peerId) });
    if (info) this.view.setTileMedia(peerId, info);
    peer = this.createPeer({
      selfId: /** @type {string} */ (s.selfId),
      remoteId: peerId,
      ice: /** @type {IceConfig} */ (s.ice),
      send: (/** @type {Frame} */ f) => this.sendSignal(f),
      onStream: (/** @type {MediaStream} */ stream) =>
        this.view.setTileStream(peerId, stream, { screen: Boolean(this.presence.peers.get(peerId)?.screen) }),
      onState: (/** @type {string} */ link) => {
        this.view.setTileLink(peerId, link);
        this.linkNews(peerId, link);
        this.renderCallState();
      },
      onStuck: () => this.replacePeer(peerId, { fresh: true }),
      fresh,
      onControl: (/** @type {import("./media-control.js").ControlMessage} */ msg) => this.onControl(peerId, msg),
      onControlOpen: () => this.controlOpened(peerId),
      onRecover: (/** @type {Peer} */ p, /** @type {{stalled: boolean}} */ why) => this.recoveryFor(peerId, p, why),
    });
    s.peers.set(peerId, peer);
    this.mark(`peer ${peerId} ${peer.negotiator.polite ? "polite" : "impolite"}${fresh ? " fresh" : ""}`);
    const pc = peer.pc;
    pc.addEventListener?.("signalingstatechange", () => this.mark(`signaling ${pc.signalingState} ${peerId}`));
    pc.addEventListener?.("iceconnectionstatechange", () => this.mark(`ice ${pc.iceConnectionState} ${peerId}`));
    pc.addEventListener?.("icegatheringstatechange", () => this.mark(`gathering ${pc.iceGatheringState} ${peerId}`));
    // A TURN server's refusal (401, 508 no relay port...) or a STUN timeout, with its URL.
    pc.addEventListener?.("icecandidateerror", (/** @type {any} */ e) =>
      this.mark(`ice-error ${e.errorCode} ${e.url ?? ""} ${e.errorText ?? ""} ${peerId}`));
    if (s.local) peer.addLocalStream(s.local);
    else peer.receiveOnly();
    if (s.screen) peer.replaceVideo(s.screen);
    this.view.setTileLink(peerId, "connecting");
    this.renderCallState();
    return peer;
  }

  /**
   * A new RTCPeerConnection in place of a stuck one, keeping the tile. Ours (fresh:
   * its first offer tells the other side to do the same) or theirs (a fresh offer
   * came: answer it from a new connection).
   * @param {string} peerId @param {{fresh?: boolean}} [opts]
   */
  replacePeer(peerId, { fresh = false } = {}) {
    if (!this.state.peers.has(peerId) || !this.state.inCall) return;
    this.forgetPeer(peerId);
    this.state.rebuilds += 1;
    this.mark(`replace ${peerId}${fresh ? " (ours stuck)" : " (theirs stuck)"}`);
    return this.ensurePeer(peerId, { fresh });
  }

  /** Say it when a peer's media link breaks and when it is back. @param {string} peerId @param {string} link */
  linkNews(peerId, link) {
    const peer = this.state.peers.get(peerId);
    if (!peer || !this.state.inCall) return;
    if (link === "disconnected" || link === "failed") {
      peer.wasBroken = true;
      const ours = this.socket.state === "offline" || this.socket.state === "reconnecting";
      this.view.showStatus(ours
        ? "Your connection is interrupted; the call reconnects when it is back…"
        : `The connection to ${this.nameOf(peerId)} was interrupted; reconnecting…`, { tone: "warn", sticky: true });
    } else if (link === "connected" && peer.wasBroken) {
      peer.wasBroken = false;
      this.view.showStatus(`The connection to ${this.nameOf(peerId)} is back.`, { tone: "ok" });
    }
  }

  /** Close our connection to a peer and forget its link numbers (the tile stays). @param {string} peerId */
  forgetPeer(peerId) {
    const s = this.state;
    s.peers.get(peerId)?.close();
    s.peers.delete(peerId);
    s.samples.delete(peerId);
    s.quality.delete(peerId);
    s.ladders.delete(peerId);
    s.sendStats.delete(peerId);
    s.views.delete(peerId);
    s.predictSamples.delete(peerId);
    s.remote.delete(peerId);
    s.wants.delete(peerId);
    s.wantsAt.delete(peerId);
    s.pendingEvents.delete(peerId);
    s.lingering.delete(peerId);
  }

  /** @param {string} peerId @param {{said?: string}} [opts] */
  dropPeer(peerId, { said } = {}) {
    this.forgetPeer(peerId);
    this.view.removeTile(peerId);
    if (said) this.view.showStatus(said, { tone: "info" });
    this.renderCallState();
  }

  dropAllPeers() {
    for (const peerId of [...this.state.peers.keys()]) this.dropPeer(peerId);
  }

  /** Connect to everyone already in the call: the one who enters offers. */
  connectToCall() {
    for (const p of this.presence.list()) {
      if (p.peer_id !== this.state.selfId && p.in_call) this.ensurePeer(p.peer_id);
    }
  }

  // --- local media and devices --------------------------------------------------
  async startPreview() {
    try {
      const stream = await this.media.openLocalMedia(this.state.choice);
      this.setLocal(stream);
      this.view.showMediaError("");
      await this.refreshDevices();
    } catch (err) {
      this.view.showMediaError(`${this.media.mediaErrorText(err)} You can still join and watch.`);
    }
    this.state.previewed = true;
    this.renderJoinable();
    this.renderToggles();
  }

  async refreshDevices() {
    try {
      const devices = await this.media.listDevices();
      const stream = this.state.local;
      this.view.showDevices(devices, {
        videoId: stream?.getVideoTracks()[0]?.getSettings().deviceId,
        audioId: stream?.getAudioTracks()[0]?.getSettings().deviceId,
      });
    } catch { /* no device list: the selects stay as they are */ }
  }

  /** @param {MediaStream|null} stream */
  setLocal(stream) {
    const s = this.state;
    const old = s.local;
    s.local = stream;
    // A new device keeps the user's mute / camera-off choice.
    const mic = stream?.getAudioTracks()[0];
    const cam = stream?.getVideoTracks()[0];
    if (mic) mic.enabled = !s.micMuted;
    if (cam) cam.enabled = !s.camOff;
    s.audio = Boolean(mic) && !s.micMuted;
    s.video = Boolean(cam) && !s.camOff;
    if (old && old !== stream) for (const t of old.getTracks()) t.stop();
    this.view.setPreview(stream);
  }

  /**
   * Another camera or microphone, before or during the call: the new tracks replace
   * the old ones on every connection without renegotiating; then the old ones stop.
   * @param {{audioId?: string, videoId?: string}} choice
   */
  async changeDevices(choice) {
    const s = this.state;
    s.choice = { ...s.choice, ...choice };
    let stream;
    try {
      stream = await this.media.openLocalMedia(s.choice);
    } catch (err) {
      this.view.showMediaError(this.media.mediaErrorText(err));
      return;
    }
    this.view.showMediaError("");
    for (const peer of s.peers.values()) {
      await peer.replaceAudio(stream.getAudioTracks()[0] ?? null);
      if (!s.screen) await peer.replaceVideo(stream.getVideoTracks()[0] ?? null);
    }
    this.setLocal(stream);
    if (s.inCall && s.selfId && !s.screen) this.view.setTileStream(s.selfId, stream);
    if (s.inCall) {
      this.view.setTileMedia(/** @type {string} */ (s.selfId), this.selfMedia());
      this.announce({ audio: s.audio, video: s.video });
    }
    this.renderToggles();
  }

  stopLocalMedia() {
    const s = this.state;
    if (s.local) for (const t of s.local.getTracks()) t.stop();
    s.local = null;
    s.screen?.stop();
    s.screen = null;
    this.view.setPreview(null);
  }

  // --- joining, leaving, ending -------------------------------------------------
  join() {
    const s = this.state;
    if (s.inCall || !s.selfId || s.ended || s.waiting) return;
    s.inCall = true;
    s.left = false;
    this.view.showPhase("in-call");
    this.view.ensureTile(s.selfId, { name: this.nameOf(s.selfId), self: true });
    this.view.setTileStream(s.selfId, s.local);
    this.view.setTileMedia(s.selfId, this.selfMedia());
    this.renderToggles();
    this.announce({ in_call: true, audio: s.audio, video: s.video });
    this.connectToCall();
    this.renderCallState();
    clearInterval(s.statsTimer);
    s.statsTimer = /** @type {any} */ (setInterval(() => this.sampleStats(), STATS_EVERY_MS));
  }

  /** Out of the call: connections closed, tiles gone, the screen share stopped. */
  closeCall() {
    const s = this.state;
    s.inCall = false;
    this.dropAllPeers();
    this.view.clearTiles();
    this.view.showSpeaker(null);
    clearInterval(s.statsTimer);
  }

  /** The user leaves the call; the room (its chat) stays connected and Rejoin needs no reload. */
  leave() {
    const s = this.state;
    if (!s.inCall) return;
    this.closeCall();
    this.stopLocalMedia();
    s.left = true;
    this.announce({ in_call: false });
    this.view.showStatus("");
    this.view.showPhase("ended");
    this.view.showEnded("You left the call. The chat stays open here.", { rejoin: true });
  }

  /** Back into the call after leaving: camera and microphone again, then join. */
  async rejoin() {
    if (this.state.ended || this.state.inCall) return;
    await this.startPreview();
    this.join();
  }

  /**
   * The call is over for good here (removed, banned, logged out, room gone): media
   * stops, and the person reads why and whether they may come back.
   * @param {string} text
   */
  end(text) {
    const s = this.state;
    if (s.ended) return;
    s.ended = true;
    this.closeCall();
    this.stopLocalMedia();
    clearTimeout(s.refreshTimer);
    this.view.showStatus("");
    this.view.showPhase("ended");
    this.view.showEnded(text, { rejoin: false });
    this.renderJoinable();
  }

  /**
   * The server took this tab out of the call, not out of the room: its seat went
   * to the member's other tab, or there was no seat to take. Back to the preview;
   * the socket and chat stay, and Join enters again.
   * @param {string} why
   */
  callEndedHere(why) {
    const s = this.state;
    if (!s.inCall) return;
    const screen = s.screen;
    this.closeCall();
    s.screen = null;
    screen?.stop();
    if (screen) this.announce({ screen: false });
    this.view.showPhase("prejoin");
    this.view.setPreview(s.local);
    this.renderRoom();
    this.renderToggles();
    this.view.showStatus(why, { tone: "warn", sticky: true });
  }

  // --- controls -------------------------------------------------------------------
  toggleMic() { this.setMicMuted(!this.state.micMuted); }

  /** @param {boolean} muted */
  setMicMuted(muted) {
    const s = this.state;
    const track = s.local?.getAudioTracks()[0];
    if (!track) { if (!muted) this.view.showStatus("No microphone to unmute.", { tone: "warn" }); return; }
    if (s.micMuted === muted) return;
    s.micMuted = muted;
    s.audio = !muted;
    track.enabled = s.audio;
    this.renderToggles();
    if (s.selfId) this.view.setTileMedia(s.selfId, this.selfMedia());
    this.announce({ audio: s.audio });
  }

  toggleCam() {
    const s = this.state;
    const track = s.local?.getVideoTracks()[0];
    if (!track) return this.view.showStatus("No camera to turn on.", { tone: "warn" });
    s.camOff = !s.camOff;
    s.video = !s.camOff;
    track.enabled = s.video;
    this.renderToggles();
    if (s.selfId) this.view.setTileMedia(s.selfId, this.selfMedia());
    this.announce({ video: s.video });
  }

  async toggleScreen() {
    const s = this.state;
    if (s.screen) return this.stopScreen();
    try {
      s.screen = await this.media.openScreen();
    } catch (err) {
      if (err?.name !== "NotAllowedError") this.view.showStatus(`Screen sharing failed: ${err?.message ?? err}`, { tone: "warn" });
      return;
    }
    s.screen.addEventListener("ended", () => this.stopScreen());
    for (const peer of s.peers.values()) await peer.replaceVideo(s.screen);
    if (s.selfId) {
      this.view.setTileStream(s.selfId, new MediaStream([s.screen]), { screen: true });
      this.view.setTileMedia(s.selfId, this.selfMedia());
    }
    this.renderToggles();
    this.announce({ screen: true });
  }

  async stopScreen() {
    const s = this.state;
    const screen = s.screen;
    if (!screen) return;
    s.screen = null;
    screen.stop();
    const camera = s.local?.getVideoTracks()[0] ?? null;
    for (const peer of s.peers.values()) await peer.replaceVideo(camera);
    if (s.selfId) {
      this.view.setTileStream(s.selfId, s.local);
      this.view.setTileMedia(s.selfId, this.selfMedia());
    }
    this.renderToggles();
    this.announce({ screen: false });
  }

  toggleHand() {
    const s = this.state;
    if (!s.inCall) return this.view.showStatus("Join the call to raise your hand.", { tone: "info" });
    const raised = Boolean(s.selfId && s.hands.has(s.selfId));
    this.socket.send({ ...(raised ? proto.handLower() : proto.handRaise()), ref: "hand" });
  }

  /** A moderator lowers someone's hand. @param {string} peerId */
  lowerHandOf(peerId) {
    this.socket.send({ ...proto.handLower(peerId), ref: "hand" });
  }

  /** @param {string} emoji */
  react(emoji) {
    if (!this.state.inCall) return this.view.showStatus("Join the call to send a reaction.", { tone: "info" });
    this.socket.send({ ...proto.reactionSend(emoji), ref: "reaction" });
  }

  // --- stats and quality ----------------------------------------------------------
  async sampleStats() {
    this.sendTelemetry().catch((err) => console.warn("telemetry", err));
    const s = this.state;
    /** @type {Map<string, number>} */
    const levels = new Map();
    for (const [peerId, peer] of [...s.peers]) {
      let cur;
      try { cur = await peer.stats(); } catch { continue; }
      const prev = s.samples.get(peerId) ?? null;
      s.samples.set(peerId, cur);
      if (s.lingering.has(peerId)) {
        // Gone from the server; keep the tile only while its frames still decode.
        const flowing = prev && cur.framesDecoded > prev.framesDecoded && peer.pc.connectionState === "connected";
        if (!flowing || this.now() - /** @type {number} */ (s.lingering.get(peerId)) > LINGER_MAX_MS) {
          this.dropPeer(peerId, { said: `${this.nameOf(peerId)} left the call (connection lost).` });
        }
        continue;
      }
      levels.set(peerId, cur.audioLevel ?? 0);
      const info = this.presence.peers.get(peerId);
      const expectVideo = Boolean(info?.video || info?.screen) && peer.pc.connectionState === "connected";
      this.watchInboundVideo(peerId, prev, cur, expectVideo);
      const level = classifyLink(prev, cur, { expectVideo: expectVideo && this.expectsFrames(peerId) });
      await this.adapt(peerId, peer, cur);
      if (level !== s.quality.get(peerId)) {
        s.quality.set(peerId, level);
        this.view.setTileQuality(peerId, level);
      }
    }
    this.view.showSpeaker(loudest(levels));
    this.sayWhoseProblem();
  }

  // --- recovery (docs/adaptation.md, "Recovery") -------------------------------------
  /** What recovery.js needs to know of a link. @param {string} peerId @returns {import("./recovery.js").LinkSituation} */
  linkSituation(peerId) {
    const s = this.state;
    const peer = s.peers.get(peerId);
    return {
      socket: this.socket.state,
      ice: peer?.pc.iceConnectionState ?? "new",
      restarts: peer?.restarts ?? 0,
      relayOnly: Boolean(peer?.relayOnly) || s.ice?.ice_transport_policy === "relay",
      turn: hasTurn(s.ice),
      peerPresent: this.presence.peers.has(peerId),
    };
  }

  /**
   * A Peer's link broke, or its last ICE restart stalled: choose (and log) its recovery.
   * @param {string} peerId @param {Peer} peer @param {{stalled?: boolean}} [why]
   */
  recoveryFor(peerId, peer, { stalled = false } = {}) {
    const choice = chooseRecovery({ ...this.linkSituation(peerId), ice: peer.pc.iceConnectionState, restarts: peer.restarts,
      relayOnly: peer.relayOnly || this.state.ice?.ice_transport_policy === "relay", stalled });
    this.logRecovery(peerId, choice);
    return choice;
  }

  /** @param {string} peerId @param {import("./recovery.js").Recovery} r */
  logRecovery(peerId, r) {
    if (r.choice === "none") return;
    console.info(`recovery ${peerId}: ${r.choice} (${r.reason})`);
    this.mark(`recover ${peerId} ${r.choice} ${r.reason}`);
    this.logEvent(peerId, recoveryEvent(r));
  }

  // --- telemetry (docs/protocol.md, "Call telemetry") ---------------------------------
  /**
   * One call.stats frame: a SAMPLE per connected peer over the interval since the
   * last one (static/js/stats-sample.js). Not queued while the socket is down: a
   * late sample of a past interval is worth little.
   */
  async sendTelemetry() {
    const s = this.state;
    const tel = this.telemetry;
    if (!s.inCall) return;
    const samples = [];
    for (const [peerId, peer] of [...s.peers]) {
      if (s.lingering.has(peerId)) continue; // the server no longer has it in the call
      let report;
      try { report = await peer.pc.getStats(); } catch { continue; }
      const sent = { prev: tel.sent.get(peerId) ?? null, cur: sentByKind(report, tel.sent.get(peerId) ?? null) };
      const sample = sampleFrom(tel.reports.get(peerId) ?? null, report, {
        peer: peerId, level: this.sendLevelOf(peerId), pred: this.predOf(peerId), events: this.eventsFor(peerId), now: this.now(),
        sent,
      });
      tel.reports.set(peerId, report);
      tel.sent.set(peerId, sent.cur);
      tel.last.set(peerId, sample);
      samples.push(sample);
    }
    for (const peerId of [...tel.reports.keys()]) {
      if (!s.peers.has(peerId)) { tel.reports.delete(peerId); tel.sent.delete(peerId); tel.last.delete(peerId); }
    }
    if (samples.length) this.socket.send(proto.callStats(samples));
  }

  /** The predictor's last probability for a peer's link (predictive mode only), else null. @param {string} peerId */
  predOf(peerId) {
    const p = this.state.adaptMode === "predictive" ? this.state.preds.get(peerId) : null;
    return typeof p === "number" && Number.isFinite(p) ? Math.round(p * 1000) / 1000 : null;
  }

  /** What we send a peer, in the telemetry's words. @param {string} peerId @returns {string} */
  sendLevelOf(peerId) {
    return this.state.peers.get(peerId)?.sendLevel ?? "full";
  }

  /** The ladder's and recovery's events about a peer since its last sample. @param {string} peerId @returns {string[]} */
  eventsFor(peerId) {
    return this.takeEvents(peerId);
  }

  // --- adaptation: what we send each peer, what we ask of them -------------------
  /**
   * One ladder decision for the link to a peer, from our own view of it (what it
   * reports losing of what we send, RTT, available bitrate, the encoder's limit).
   * @param {string} peerId @param {Peer} peer @param {any} cur peer.stats()
   */
  async adapt(peerId, peer, cur) {
    const s = this.state;
    const sendView = senderView(s.sendStats.get(peerId) ?? null, cur);
    s.sendStats.set(peerId, cur);
    const history = s.views.get(peerId) ?? [];
    history.push(sendView);
    if (history.length > PREDICT_HISTORY) history.shift();
    s.views.set(peerId, history);
    // A link that is down says nothing of congestion (its losses are the outage's, and
    // recovery.js deals with it): the ladder neither steps nor predicts meanwhile. A call
    // whose path flapped went full -> reduced -> low -> audio, one step per outage. Down
    // is also a path silent for peer.js SILENT_MS while ICE still says connected (it
    // notices a blackout ~7.5 s late): those seconds stepped it to audio only too. Once
    // it is back, the estimate climbs from where it decayed (SendLadder.linkDown).
    if (s.adaptMode === "off") return;
    const ladder = this.ladderOf(peerId);
    if (!peer.linkUp() || cur.silent) {
      ladder.linkDown();
      return;
    }
    let step = ladder.observe(sendView);
    // A predictor reads the telemetry's SAMPLEs of this link (docs/protocol.md), oldest first.
    const latest = this.telemetry?.last.get(peerId);
    const samples = s.predictSamples.get(peerId) ?? [];
    if (latest && latest !== samples.at(-1)) samples.push(latest);
    if (samples.length > PREDICT_HISTORY) samples.shift();
    s.predictSamples.set(peerId, samples);
    if (!step && s.adaptMode === "predictive" && this.predictor) {
      let p = null;
      try { p = this.predictor(samples.length ? samples : history); } catch (err) { console.warn("predictor", err); }
      s.preds.set(peerId, typeof p === "number" ? p : null);
      step = ladder.observePrediction(typeof p === "number" ? p : null, sendView.t);
      if (step) this.logEvent(peerId, `predict:${/** @type {number} */ (p).toFixed(2)}`);
    }
    if (step) await this.applyStep(peerId, step);
  }

  /** @param {string} peerId */
  ladderOf(peerId) {
    const s = this.state;
    let ladder = s.ladders.get(peerId);
    if (!ladder) {
      ladder = new SendLadder(this.predictDown === null ? {} : { predictDown: this.predictDown });
      s.ladders.set(peerId, ladder);
    }
    return ladder;
  }

  /** @param {string} peerId @param {import("./call-quality.js").Step} step */
  async applyStep(peerId, step) {
    const peer = this.state.peers.get(peerId);
    this.logEvent(peerId, `step:${step.level}:${step.reason}`);
    if (!peer) return;
    peer.sendControl(levelMessage(step.level, step.reason));
    await peer.setSendLevel(step.level);
    if (step.reason === "manual" || this.state.ladders.get(peerId)?.pinned) return;
    const name = this.nameOf(peerId);
    const text = {
      full: `The link to ${name} recovered: sending full video again.`,
      reduced: `Weak link to ${name}: sending lower-quality video.`,
      low: `Poor link to ${name}: sending low-quality video.`,
      audio: `Poor link to ${name}: sending audio only until it improves.`,
    };
    this.view.showStatus(text[step.level], { tone: step.level === "full" ? "ok" : "warn" });
  }

  /** @param {string} peerId @param {string} event */
  logEvent(peerId, event) {
    const s = this.state;
    s.events.push({ t: this.now(), peer: peerId, event });
    if (s.events.length > EVENTS_KEPT) s.events.shift();
    const pending = s.pendingEvents.get(peerId) ?? [];
    pending.push(event);
    s.pendingEvents.set(peerId, pending.slice(-16));
  }

  /** The events about a peer since the last call (for its next telemetry sample). @param {string} peerId */
  takeEvents(peerId) {
    const pending = this.state.pendingEvents.get(peerId) ?? [];
    this.state.pendingEvents.delete(peerId);
    return pending;
  }

  /** @param {"off"|"reactive"|"predictive"} mode */
  setAdaptMode(mode) {
    if (!ADAPT_MODES.includes(mode)) throw new Error(`unknown adaptation mode ${mode}`);
    const s = this.state;
    s.adaptMode = mode;
    if (mode !== "off") return;
    // No adaptation: everyone gets full video again.
    for (const peerId of s.peers.keys()) {
      const ladder = this.ladderOf(peerId);
      const step = ladder.force("full", this.now());
      ladder.force(null, this.now());
      if (step) this.applyStep(peerId, step);
    }
  }

  /**
   * The predictor of predictive mode, and the probability at which the ladder acts on
   * it (a model's own alarm threshold, static/js/quality-model.json; default the
   * ladder's predictDown).
   * @param {((samples: object[]) => number|null)|null} fn @param {{threshold?: number}} [opts]
   */
  setPredictor(fn, { threshold } = {}) {
    this.predictor = fn;
    this.predictDown = typeof threshold === "number" ? threshold : null;
    for (const ladder of this.state.ladders.values()) {
      ladder.o.predictDown = this.predictDown ?? LADDER_DEFAULTS.predictDown;
    }
  }

  /**
   * Hold a send level by hand (tests, the lab); null gives the peer back to the ladder.
   * @param {import("./call-quality.js").SendLevel|null} level @param {string} [peerId] all peers if absent
   * @param {import("./call-quality.js").StepReason} [reason] what the peer is told (default "manual")
   */
  async forceSendLevel(level, peerId, reason = "manual") {
    const ids = peerId ? [peerId] : [...this.state.peers.keys()];
    for (const id of ids) {
      const step = this.ladderOf(id).force(level, this.now(), reason);
      if (step) await this.applyStep(id, step);
    }
  }

  /** @returns {Record<string, string>} what we send each peer */
  sendLevels() {
    /** @type {Record<string, string>} */
    const out = {};
    for (const [peerId, peer] of this.state.peers) out[peerId] = peer.sendLevel ?? "full";
    return out;
  }

  /** The channel to a peer opened: tell it what we send and whether we want its video. @param {string} peerId */
  controlOpened(peerId) {
    const s = this.state;
    const peer = s.peers.get(peerId);
    if (!peer) return;
    const ladder = s.ladders.get(peerId);
    if (ladder && ladder.level !== "full") peer.sendControl(levelMessage(ladder.level, "manual"));
    s.wants.delete(peerId);
    this.updateWants();
  }

  /** @param {string} peerId @param {import("./media-control.js").ControlMessage} msg */
  onControl(peerId, msg) {
    const s = this.state;
    const peer = s.peers.get(peerId);
    if (!peer) return;
    if (msg.want_video !== undefined && msg.want_video !== peer.remoteWantsVideo) {
      this.mark(`want_video ${msg.want_video} from ${peerId}`);
      peer.setRemoteWantsVideo(msg.want_video);
    }
    if (msg.level) {
      const remote = this.remoteOf(peerId);
      remote.level = msg.level;
      remote.reason = msg.reason ?? null;
      remote.frozen = false;
      this.view.setTileRemoteVideo(peerId, { ...remote });
    }
  }

  /** @param {string} peerId @returns {RemoteVideo} */
  remoteOf(peerId) {
    const s = this.state;
    let remote = s.remote.get(peerId);
    if (!remote) { remote = { level: null, reason: null, paused: null, frozen: false }; s.remote.set(peerId, remote); }
    return remote;
  }

  /** Whether we want a peer's video now: not in low-bandwidth mode, and its tile can be seen. @param {string} peerId */
  wantVideoFrom(peerId) {
    const s = this.state;
    return !s.lowBandwidth && s.pageVisible && !s.stageCovered && !s.offscreen.has(peerId);
  }

  /** Whether frames should be arriving from a peer (we asked for them, it says it sends them). @param {string} peerId */
  expectsFrames(peerId) {
    const remote = this.state.remote.get(peerId);
    return this.state.wants.get(peerId) !== false && remote?.level !== "audio";
  }

  /** Ask each peer for its video or not, when that changed. */
  updateWants() {
    const s = this.state;
    for (const [peerId, peer] of s.peers) {
      const want = this.wantVideoFrom(peerId);
      if (s.wants.get(peerId) === want) continue;
      s.wants.set(peerId, want);
      s.wantsAt.set(peerId, this.now());
      peer.sendControl(wantVideoMessage(want));
      const remote = this.remoteOf(peerId);
      remote.paused = want ? null : s.lowBandwidth ? "low-bandwidth" : "hidden";
      remote.frozen = false;
      this.view.setTileRemoteVideo(peerId, { ...remote });
    }
  }

  /** Low-bandwidth mode: every peer stops sending us video (off: they resume). @param {boolean} on */
  setLowBandwidth(on) {
    this.state.lowBandwidth = on;
    this.view.showLowBandwidth(on);
    this.updateWants();
  }

  /** The page is shown or hidden (another tab, minimised). @param {boolean} visible */
  setPageVisible(visible) {
    this.state.pageVisible = visible;
    this.updateWants();
  }

  /** A panel covers the whole stage (a narrow screen). @param {boolean} covered */
  setStageCovered(covered) {
    this.state.stageCovered = covered;
    this.updateWants();
  }

  /** A peer's tile scrolled into or out of view. @param {string} peerId @param {boolean} visible */
  setTileVisible(peerId, visible) {
    if (visible) this.state.offscreen.delete(peerId);
    else this.state.offscreen.add(peerId);
    this.updateWants();
  }

  /**
   * A peer's video that stopped with no word from it (no level message, not asked
   * to pause) is labelled frozen on its tile rather than left as a still frame.
   * @param {string} peerId @param {any} prev @param {any} cur @param {boolean} expectVideo
   */
  watchInboundVideo(peerId, prev, cur, expectVideo) {
    const s = this.state;
    const peer = s.peers.get(peerId);
    if (!prev || !peer) return;
    const settled = this.now() - (s.wantsAt.get(peerId) ?? 0) > 1.5 * STATS_EVERY_MS;
    const frozen = expectVideo && settled && this.expectsFrames(peerId) && peer.pc.connectionState === "connected"
      && cur.framesDecoded === prev.framesDecoded;
    const remote = this.remoteOf(peerId);
    if (frozen === remote.frozen) return;
    remote.frozen = frozen;
    this.view.setTileRemoteVideo(peerId, { ...remote });
  }

  /** Tell the person whose side has the problem, once per change. */
  sayWhoseProblem() {
    const s = this.state;
    const selfTrouble = this.socket.state === "offline" || this.socket.state === "reconnecting";
    const verdict = blame({ selfTrouble, levels: s.quality });
    const key = `${verdict.side}:${verdict.peers.join(",")}`;
    if (key === s.blamed) return;
    const before = s.blamed;
    s.blamed = key;
    const names = verdict.peers.map((id) => this.nameOf(id)).join(", ");
    if (verdict.side === "self") {
      this.view.showStatus("Your connection is poor; others may see you freeze.", { tone: "warn" });
    } else if (verdict.side === "peer") {
      this.view.showStatus(`${names}'s connection is poor; their video may freeze.`, { tone: "warn" });
    } else if (verdict.side === "between") {
      this.view.showStatus(`The connection between you and ${names} is poor; video may freeze.`, { tone: "warn" });
    } else if (before !== "none" && before !== "") {
      this.view.showStatus("The connection recovered.", { tone: "ok" });
    }
  }

  // --- TURN credentials -----------------------------------------------------------
  /** @param {IceConfig|null} ice */
  setIce(ice) {
    const s = this.state;
    s.ice = ice;
    clearTimeout(s.refreshTimer);
    if (ice?.expires_at) {
      // Refresh at 80% of the lifetime: a restart late in a long call still authenticates.
      const lifetimeMs = ice.expires_at * 1000 - this.now();
      s.refreshTimer = /** @type {any} */ (setTimeout(() => this.socket.send(proto.turnRefresh()),
        Math.max(5000, lifetimeMs * 0.8)));
    }
  }

  // --- hands ---------------------------------------------------------------------
  /** @param {PeerState} p */
  handFromPeer(p) {
    if (p.hand_at) this.state.hands.set(p.peer_id, { peer_id: p.peer_id, name: p.display_name, at: p.hand_at });
    else if (p.hand_at === null) this.state.hands.delete(p.peer_id);
  }

  // --- socket events -------------------------------------------------------------
  /** Subscribe to the room socket; then open the camera for the preview. */
  start() {
    const on = (/** @type {string} */ type, /** @type {(f: any) => void} */ fn) => this.socket.on(type, fn);
    on(IN.welcome, (f) => this.onWelcome(f));
    on(IN.presenceJoin, (f) => this.onPresenceJoin(f.peer));
    on(IN.presenceUpdate, (f) => this.onPresenceUpdate(f.peer));
    on(IN.presenceLeave, (f) => this.onPresenceLeave(f.peer_id, f.reason));
    for (const type of proto.SIGNAL_TYPES) on(type, (f) => this.onSignal(f));
    on(IN.turnCredentials, (f) => {
      this.setIce(f);
      for (const peer of this.state.peers.values()) peer.setIceConfig(f);
    });
    on(IN.error, (f) => this.onError(f));
    on(IN.callLeft, (f) => this.callEndedHere(f.reason === "joined_elsewhere"
      ? "You joined the call in another tab or window, so this tab left it. Chat stays open here; Join to bring the call back."
      : "You left the call."));
    on(IN.lobbyWaiting, () => { this.state.waiting = true; this.renderJoinable(); });
    for (const type of [IN.modKicked, IN.modBanned, IN.sessionEnded]) {
      on(type, (f) => {
        // The close follows; end now so media stops at once, whatever the close says.
        this.state.notice = f;
        this.end(/** @type {string} */ (endSentence(f, undefined)));
      });
    }
    on(IN.handRaised, (f) => {
      this.state.hands.set(f.peer_id, { peer_id: f.peer_id, name: f.name, at: f.at });
      this.renderHands();
    });
    on(IN.handLowered, (f) => { this.state.hands.delete(f.peer_id); this.renderHands(); });
    on(IN.reaction, (f) => this.view.showReaction({ peer_id: f.peer_id, name: f.name, emoji: f.emoji }));
    this.socket.onState((st, detail) => this.onSocketState(st, /** @type {any} */ (detail)));
    this.renderJoinable();
    return this.startPreview();
  }

  /** @param {Frame} f */
  onWelcome(f) {
    const s = this.state;
    if (s.ended) return;
    this.note(f.resumed ? "resumed" : "welcome", f);
    const previousId = s.selfId;
    s.selfId = f.peer_id;
    s.waiting = false;
    s.resume = f.resume ? { peer_id: f.peer_id, token: f.resume.token } : null;
    this.setIce(f.ice);
    s.hands.clear();
    for (const p of f.participants) {
      s.names.set(p.peer_id, p.display_name);
      s.members.set(p.peer_id, p.member_id);
      this.handFromPeer(p);
    }
    this.view.showRoomSummary(describeRoom(f.participants, f.peer_id));
    if (f.resumed) {
      for (const frame of s.queue.splice(0)) this.socket.send(frame);
      const present = new Set(f.participants.map((/** @type {PeerState} */ p) => p.peer_id));
      for (const peerId of [...s.peers.keys()]) {
        if (!present.has(peerId)) this.dropPeer(peerId, { said: `${this.nameOf(peerId)} left the call.` });
      }
      let restarted = 0;
      for (const [peerId, peer] of s.peers) {
        peer.setIceConfig(f.ice);
        if (peer.recoverIfBroken()) {
          restarted += 1;
          this.logRecovery(peerId, { choice: "ice-restart", reason: "after-resume" });
        }
      }
      if (s.inCall) this.connectToCall();
      if (s.wasDisconnected) {
        this.view.showStatus(restarted ? "Reconnected; restoring media…" : "Reconnected.", { tone: "ok" });
      }
    } else {
      s.queue.length = 0;
      if (previousId && previousId !== f.peer_id) {
        // The session could not be resumed: a clean rejoin under a new id.
        this.dropAllPeers();
        if (s.inCall) {
          this.view.removeTile(previousId);
          this.view.ensureTile(f.peer_id, { name: this.nameOf(f.peer_id), self: true });
          this.view.setTileStream(f.peer_id, s.screen ? new MediaStream([s.screen]) : s.local, { screen: Boolean(s.screen) });
          this.view.setTileMedia(f.peer_id, this.selfMedia());
        }
      }
      if (s.inCall) this.connectToCall();
      if (previousId && previousId !== f.peer_id) {
        for (const peerId of s.peers.keys()) this.logRecovery(peerId, chooseRecovery({ ...this.linkSituation(peerId), resumeRefused: true }));
      }
      if (s.wasDisconnected) this.view.showStatus("Reconnected; rejoined the call.", { tone: "ok" });
    }
    s.wasDisconnected = false;
    this.renderHands();
    this.renderJoinable();
    this.renderCallState();
  }

  /** @param {PeerState} peer */
  onPresenceJoin(peer) {
    const s = this.state;
    s.names.set(peer.peer_id, peer.display_name);
    s.members.set(peer.peer_id, peer.member_id);
    this.handFromPeer(peer);
    // Someone the server had dropped is back under a new id: the old tile goes now.
    for (const id of [...s.lingering.keys()]) {
      if (id === peer.peer_id) continue;
      if (s.members.get(id) === peer.member_id) this.dropPeer(id);
    }
    this.renderHands();
    this.renderRoom();
  }

  /** @param {PeerState} peer */
  onPresenceUpdate(peer) {
    const s = this.state;
    const peerId = peer.peer_id;
    this.handFromPeer(peer);
    this.renderHands();
    if (peerId === s.selfId) return;
    if (s.inCall && peer.in_call === false && s.peers.has(peerId)) {
      this.dropPeer(peerId, { said: `${peer.display_name} left the call.` });
      return;
    }
    if (s.peers.has(peerId)) this.view.setTileMedia(peerId, peer);
    else if (s.inCall && peer.in_call) {
      // They entered the call and should offer to us. If we both entered at
      // once, neither saw the other in the call: then nobody would. Give
      // their offer a moment, then offer ourselves. The polite side waits
      // twice as long, so the two entry offers do not cross (a brand-new
      // connection that rolls back its first offer at once can come out with
      // no ICE candidates at all in Chromium).
      const wait = isPolite(/** @type {string} */ (s.selfId), peerId) ? 2 * ENTRY_FALLBACK_MS : ENTRY_FALLBACK_MS;
      setTimeout(() => {
        if (s.inCall && !s.peers.has(peerId) && this.presence.peers.get(peerId)?.in_call) this.ensurePeer(peerId);
      }, wait);
    }
    this.renderRoom();
  }

  /** @param {string} peerId @param {string} reason */
  onPresenceLeave(peerId, reason) {
    const s = this.state;
    if (s.hands.delete(peerId)) this.renderHands();
    const peer = s.peers.get(peerId);
    if (peer) {
      if (reason === "timeout" && peer.pc.connectionState === "connected") {
        // The server lost its socket; its media may still flow peer to peer.
        // Keep the tile while frames decode (checked with each stats sample).
        s.lingering.set(peerId, this.now());
        this.mark(`linger ${peerId}`);
      } else {
        const why = reason === "timeout" ? " (connection lost)" : "";
        this.dropPeer(peerId, { said: `${this.nameOf(peerId)} left the call${why}.` });
      }
    }
    this.renderRoom();
  }

  /** @param {Frame} f */
  onSignal(f) {
    const s = this.state;
    if (f.type !== IN.ice) this.note("recv", f);
    if (!s.inCall || typeof f.from !== "string") return;
    // An offer from someone we have no connection with: they just entered.
    if (!s.peers.has(f.from) && f.type !== IN.offer) return;
    // They replaced a stuck connection with a new one: so do we, to answer it.
    if (f.type === IN.offer && f.fresh === true) this.replacePeer(f.from);
    s.lingering.delete(f.from);
    this.ensurePeer(f.from).receive(f);
  }

  /** @param {Frame} f */
  onError(f) {
    const s = this.state;
    this.note(`error ${f.code}`, f);
    if (f.code === "unknown_peer" && f.peer_id) this.dropPeer(f.peer_id);
    if (f.code === "room_full") {
      this.callEndedHere(`The call is full (${f.capacity} people). You can still chat here; try Join again later.`);
    }
    if (["kicked", "banned", "lobby_rejected"].includes(f.code)) s.notice = f;
    if (f.code === "not_in_call") this.view.showStatus("Join the call to raise your hand or react.", { tone: "info" });
    if (f.code === "rate_limited" && f.ref === "reaction") {
      this.view.showStatus(`Too many reactions; try again in ${Math.ceil(Number(f.retry_after) || 1)} s.`, { tone: "info" });
    }
  }

  /** @param {string} st @param {{code?: number, reason?: string}} detail */
  onSocketState(st, detail = {}) {
    const s = this.state;
    if (s.ended) return;
    if (st === "closed") {
      // We stopped it ourselves (the password prompt restarts it): not an end.
      if (this.socket.stopped && !s.notice) return;
      const text = endSentence(s.notice, detail.code);
      if (text) this.end(text);
      return;
    }
    if ((st === "offline" || st === "reconnecting") && !s.wasDisconnected && s.inCall) {
      // Nothing can be renegotiated without the socket: its resume comes first.
      for (const peerId of s.peers.keys()) this.logRecovery(peerId, chooseRecovery({ ...this.linkSituation(peerId), socket: st }));
    }
    if (st === "offline") {
      s.wasDisconnected = true;
      const media = s.inCall ? " The call continues where it can and reconnects when the network is back." : "";
      this.view.showStatus(`You are offline.${media}`, { tone: "bad", sticky: true });
    } else if (st === "reconnecting") {
      s.wasDisconnected = true;
      const media = s.inCall ? " Your call continues while we reconnect." : "";
      this.view.showStatus(`Connection to the server lost; reconnecting…${media}`, { tone: "warn", sticky: true });
    }
    this.renderCallState();
  }

  // --- what the socket and the tests read --------------------------------------------
  helloExtras() {
    const s = this.state;
    /** @type {Record<string, any>} */
    const extras = { in_call: s.inCall, audio: s.audio, video: s.video };
    if (s.resume) extras.resume = s.resume;
    return extras;
  }

  /** The sender's view of each link, last sample (the lab and tests read it). */
  lastViews() {
    /** @type {Record<string, any>} */
    const out = {};
    for (const [peerId, views] of this.state.views) out[peerId] = views.at(-1) ?? null;
    return out;
  }

  /** Per-peer link numbers (used by the browser tests and the bench). */
  async stats() {
    /** @type {Record<string, any>} */
    const out = {};
    for (const [peerId, peer] of this.state.peers) out[peerId] = { ...(await peer.stats()), state: peer.pc.connectionState };
    return out;
  }
}
