// The call feature of the room page: pre-join preview, a mesh of peer
// connections, controls, resume after the socket drops. init() is called once
// by main.js. Signaling goes through the room socket; see docs/protocol.md.
import { Peer } from "./peer.js";
import { isPolite } from "./negotiation.js";
import { listDevices, mediaErrorText, openLocalMedia, openScreen } from "./media.js";
import { SendPolicy, classifyLink } from "./call-quality.js";
import * as ui from "./call-ui.js";

const STATS_EVERY_MS = 2000;
const SIGNAL_QUEUE_LIMIT = 500;
const ENTRY_FALLBACK_MS = 1500;

/**
 * @typedef {import("./peer.js").IceConfig} IceConfig
 * @typedef {{peer_id: string, display_name: string, audio: boolean, video: boolean,
 *            screen: boolean, in_call?: boolean}} PeerState
 */

/** @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence, root: HTMLElement}} ctx */
export function init({ socket, presence }) {
  if (!document.getElementById("call")) return { helloExtras: () => ({}) };

  const state = {
    /** @type {string|null} */ selfId: null,
    inCall: false,
    left: false,
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
    /** @type {Map<string, any>} last stats sample per peer */ samples: new Map(),
    /** @type {Map<string, string>} */ quality: new Map(),
    /** @type {Map<string, SendPolicy>} what we send each peer, from its link */ policies: new Map(),
    /** @type {object[]} signals that could not be sent while the socket was down */ queue: [],
    wasDisconnected: false,
    rebuilds: 0, // connections replaced (stuck), for diagnostics and tests
    refreshTimer: 0,
    statsTimer: 0,
    /** @type {{audioId?: string, videoId?: string}} */ choice: {},
  };

  // --- sending -------------------------------------------------------------
  // The last signaling events, for diagnosing a stuck negotiation (tests read it).
  const trace = [];
  function mark(text) {
    trace.push(`${(performance.now() / 1000).toFixed(2)} ${text}`);
    if (trace.length > 100) trace.shift();
  }
  function note(what, frame) {
    mark(`${what} ${frame.type} ${frame.to ?? frame.from ?? ""}${frame.restart ? " restart" : ""}`);
  }

  function sendSignal(frame) {
    if (frame.type !== "signal.ice") note("send", frame);
    if (socket.send(frame)) return;
    note("queued", frame);
    // The socket is reconnecting: keep it for the resumed session (in order).
    state.queue.push(frame);
    if (state.queue.length > SIGNAL_QUEUE_LIMIT) state.queue.shift();
  }

  function announce(changes) {
    socket.send({ type: "presence.update", ...changes });
  }

  // --- peers ---------------------------------------------------------------
  function nameOf(peerId) {
    return presence.peers.get(peerId)?.display_name ?? state.names.get(peerId) ?? "Someone";
  }

  /** @param {string} peerId @param {{fresh?: boolean}} [opts] fresh: replaces a stuck one */
  function ensurePeer(peerId, { fresh = false } = {}) {
    let peer = state.peers.get(peerId);
    if (peer) return peer;
    const info = presence.peers.get(peerId);
    ui.ensureTile(peerId, { name: nameOf(peerId) });
    if (info) ui.setTileMedia(peerId, info);
    peer = new Peer({
      selfId: /** @type {string} */ (state.selfId),
      remoteId: peerId,
      ice: /** @type {IceConfig} */ (state.ice),
      send: sendSignal,
      onStream: (stream) => ui.setTileStream(peerId, stream),
      onState: (link) => { ui.setTileLink(peerId, link); linkNews(peerId, link); renderCallState(); },
      onStuck: () => replacePeer(peerId, { fresh: true }),
      fresh,
    });
    state.peers.set(peerId, peer);
    mark(`peer ${peerId} ${peer.negotiator.polite ? "polite" : "impolite"}${fresh ? " fresh" : ""}`);
    const pc = peer.pc;
    pc.addEventListener("signalingstatechange", () => mark(`signaling ${pc.signalingState} ${peerId}`));
    pc.addEventListener("iceconnectionstatechange", () => mark(`ice ${pc.iceConnectionState} ${peerId}`));
    if (state.local) peer.addLocalStream(state.local);
    else peer.receiveOnly();
    if (state.screen) peer.replaceVideo(state.screen);
    ui.setTileLink(peerId, "connecting");
    renderCallState();
    return peer;
  }

  /**
   * A new RTCPeerConnection in place of a stuck one, keeping the tile. Ours (fresh:
   * its first offer tells the other side to do the same) or theirs (a fresh offer
   * came: answer it from a new connection).
   */
  function replacePeer(peerId, { fresh = false } = {}) {
    if (!state.peers.has(peerId) || !state.inCall) return;
    forgetPeer(peerId);
    state.rebuilds += 1;
    mark(`replace ${peerId}${fresh ? " (ours stuck)" : " (theirs stuck)"}`);
    return ensurePeer(peerId, { fresh });
  }

  /** Say it when a peer's media link breaks and when it is back. */
  function linkNews(peerId, link) {
    const peer = state.peers.get(peerId);
    if (!peer) return;
    if (link === "disconnected" || link === "failed") {
      peer.wasBroken = true;
      ui.showStatus(`The connection to ${nameOf(peerId)} was interrupted; reconnecting…`, { tone: "warn", sticky: true });
    } else if (link === "connected" && peer.wasBroken) {
      peer.wasBroken = false;
      ui.showStatus(`The connection to ${nameOf(peerId)} is back.`, { tone: "ok" });
    }
  }

  /** Close our connection to a peer and forget its link numbers (the tile stays). */
  function forgetPeer(peerId) {
    state.peers.get(peerId)?.close();
    state.peers.delete(peerId);
    state.samples.delete(peerId);
    state.quality.delete(peerId);
    state.policies.delete(peerId);
  }

  /** @param {string} peerId @param {{said?: string}} [opts] */
  function dropPeer(peerId, { said } = {}) {
    forgetPeer(peerId);
    ui.removeTile(peerId);
    if (said) ui.showStatus(said, { tone: "info" });
    renderCallState();
  }

  function dropAllPeers() {
    for (const peerId of [...state.peers.keys()]) dropPeer(peerId);
  }

  /** Connect to everyone already in the call: the one who enters offers. */
  function connectToCall() {
    for (const p of presence.list()) {
      if (p.peer_id !== state.selfId && p.in_call) ensurePeer(p.peer_id);
    }
  }

  function renderCallState() {
    if (!state.inCall) return;
    const links = [...state.peers.values()].map((p) => p.pc.connectionState);
    const connected = links.filter((s) => s === "connected").length;
    if (socket.state === "reconnecting") {
      ui.showCallState("Reconnecting…", "reconnecting");
    } else if (links.length === 0) {
      ui.showCallState("Waiting for others to join", "open");
    } else if (connected === links.length) {
      ui.showCallState(`Connected to ${connected} of ${links.length}`, "open");
    } else {
      ui.showCallState(`Connecting… ${connected} of ${links.length}`, "connecting");
    }
  }

  // --- local media ---------------------------------------------------------
  async function startPreview() {
    try {
      const stream = await openLocalMedia(state.choice);
      setLocal(stream);
      ui.showMediaError("");
      const { cameras, mics } = await listDevices();
      ui.fillDevices(/** @type {HTMLSelectElement} */ (ui.$("camera-select")), cameras,
        stream.getVideoTracks()[0]?.getSettings().deviceId);
      ui.fillDevices(/** @type {HTMLSelectElement} */ (ui.$("mic-select")), mics,
        stream.getAudioTracks()[0]?.getSettings().deviceId);
    } catch (err) {
      ui.showMediaError(`${mediaErrorText(err)} You can still join and watch.`);
    }
    /** @type {HTMLButtonElement} */ (ui.$("join-call")).disabled = false;
  }

  function setLocal(stream) {
    if (state.local && state.local !== stream) for (const t of state.local.getTracks()) t.stop();
    state.local = stream;
    // A new device keeps the user's mute / camera-off choice.
    const mic = stream?.getAudioTracks()[0];
    const cam = stream?.getVideoTracks()[0];
    if (mic) mic.enabled = !state.micMuted;
    if (cam) cam.enabled = !state.camOff;
    state.audio = Boolean(mic) && !state.micMuted;
    state.video = Boolean(cam) && !state.camOff;
    ui.setPreview(stream);
  }

  async function changeDevice() {
    state.choice = {
      videoId: /** @type {HTMLSelectElement} */ (ui.$("camera-select")).value || undefined,
      audioId: /** @type {HTMLSelectElement} */ (ui.$("mic-select")).value || undefined,
    };
    try {
      setLocal(await openLocalMedia(state.choice));
      ui.showMediaError("");
    } catch (err) {
      ui.showMediaError(mediaErrorText(err));
    }
  }

  // --- joining and leaving -------------------------------------------------
  function joinCall() {
    if (state.inCall || !state.selfId) return;
    state.inCall = true;
    ui.showPhase("in-call");
    ui.ensureTile(state.selfId, { name: nameOf(state.selfId), self: true });
    ui.setTileStream(state.selfId, state.local);
    ui.setTileMedia(state.selfId, { audio: state.audio, video: state.video, screen: false });
    ui.setToggle("toggle-mic", !state.audio, ["Mute", "Unmute"]);
    ui.setToggle("toggle-cam", !state.video, ["Camera off", "Camera on"]);
    announce({ in_call: true, audio: state.audio, video: state.video });
    connectToCall();
    renderCallState();
    state.statsTimer = window.setInterval(sampleStats, STATS_EVERY_MS);
  }

  function leaveCall() {
    state.left = true;
    socket.send({ type: "leave" });
    socket.stop();
    dropAllPeers();
    ui.clearTiles();
    if (state.local) for (const t of state.local.getTracks()) t.stop();
    state.screen?.stop();
    clearInterval(state.statsTimer);
    clearTimeout(state.refreshTimer);
    state.inCall = false;
    ui.showPhase("left");
    ui.showStatus("");
  }

  /**
   * The server took this tab out of the call, not out of the room: its seat
   * went to the member's other tab, or there was no seat to take. Back to the
   * preview; the socket and chat stay, and Join enters again.
   * @param {string} why
   */
  function callEndedHere(why) {
    if (!state.inCall) return;
    state.inCall = false;
    dropAllPeers();
    ui.clearTiles();
    const screen = state.screen;
    state.screen = null;
    screen?.stop();
    ui.setToggle("toggle-screen", false, ["Share screen", "Stop sharing"]);
    if (screen) announce({ screen: false });
    clearInterval(state.statsTimer);
    ui.showPhase("prejoin");
    ui.setPreview(state.local);
    ui.$("call-count").textContent = describeRoom(presence.list(), state.selfId);
    ui.showStatus(why, { tone: "warn", sticky: true });
  }

  // --- controls ------------------------------------------------------------
  function toggleMic() {
    const track = state.local?.getAudioTracks()[0];
    if (!track) return ui.showStatus("No microphone to unmute.", { tone: "warn" });
    state.micMuted = !state.micMuted;
    state.audio = !state.micMuted;
    track.enabled = state.audio;
    for (const id of ["toggle-mic", "pre-mic"]) ui.setToggle(id, !state.audio, ["Mute", "Unmute"]);
    ui.setTileMedia(state.selfId, { audio: state.audio, video: state.video, screen: Boolean(state.screen) });
    announce({ audio: state.audio });
  }

  function toggleCam() {
    const track = state.local?.getVideoTracks()[0];
    if (!track) return ui.showStatus("No camera to turn on.", { tone: "warn" });
    state.camOff = !state.camOff;
    state.video = !state.camOff;
    track.enabled = state.video;
    for (const id of ["toggle-cam", "pre-cam"]) ui.setToggle(id, !state.video, ["Camera off", "Camera on"]);
    ui.setTileMedia(state.selfId, { audio: state.audio, video: state.video, screen: Boolean(state.screen) });
    announce({ video: state.video });
  }

  async function toggleScreen() {
    if (state.screen) return stopScreen();
    try {
      state.screen = await openScreen();
    } catch (err) {
      if (err?.name !== "NotAllowedError") ui.showStatus(`Screen sharing failed: ${err?.message ?? err}`, { tone: "warn" });
      return;
    }
    state.screen.addEventListener("ended", stopScreen);
    for (const peer of state.peers.values()) await peer.replaceVideo(state.screen);
    ui.setTileStream(state.selfId, new MediaStream([state.screen]));
    ui.setToggle("toggle-screen", true, ["Share screen", "Stop sharing"]);
    announce({ screen: true });
  }

  async function stopScreen() {
    const screen = state.screen;
    if (!screen) return;
    state.screen = null;
    screen.stop();
    const camera = state.local?.getVideoTracks()[0] ?? null;
    for (const peer of state.peers.values()) await peer.replaceVideo(camera);
    ui.setTileStream(state.selfId, state.local);
    ui.setToggle("toggle-screen", false, ["Share screen", "Stop sharing"]);
    announce({ screen: false });
  }

  // --- stats and quality ---------------------------------------------------
  async function sampleStats() {
    for (const [peerId, peer] of state.peers) {
      let cur;
      try { cur = await peer.stats(); } catch { continue; }
      const info = presence.peers.get(peerId);
      const expectVideo = Boolean(info?.video || info?.screen) && peer.pc.connectionState === "connected";
      const prev = state.samples.get(peerId) ?? null;
      const level = classifyLink(prev, cur, { expectVideo });
      state.samples.set(peerId, cur);
      // Degrade what we send on loss/RTT only: a frozen picture may be the other
      // side degrading its own sending, and must not start a spiral.
      if (!state.policies.has(peerId)) state.policies.set(peerId, new SendPolicy());
      const policy = /** @type {SendPolicy} */ (state.policies.get(peerId));
      if (policy.observe(classifyLink(prev, cur))) {
        await peer.setSendLevel(policy.name);
        const text = {
          full: `The link to ${nameOf(peerId)} recovered: sending full video again.`,
          reduced: `Poor link to ${nameOf(peerId)}: sending lower-quality video.`,
          "audio-only": `Poor link to ${nameOf(peerId)}: sending audio only until it improves.`,
        };
        ui.showStatus(text[policy.name], { tone: policy.level ? "warn" : "ok" });
      }
      const before = state.quality.get(peerId);
      if (level === before) continue;
      state.quality.set(peerId, level);
      ui.setTileQuality(peerId, level);
      if (level === "poor") ui.showStatus(`${nameOf(peerId)}'s connection is poor; video may freeze.`, { tone: "warn" });
      else if (before === "poor" && level === "good") ui.showStatus(`${nameOf(peerId)}'s connection recovered.`, { tone: "ok" });
    }
  }

  // --- TURN credentials ----------------------------------------------------
  function setIce(ice) {
    state.ice = ice;
    clearTimeout(state.refreshTimer);
    if (ice?.expires_at) {
      // Refresh at 80% of the lifetime: a restart late in a long call still authenticates.
      const lifetimeMs = ice.expires_at * 1000 - Date.now();
      state.refreshTimer = window.setTimeout(() => socket.send({ type: "turn.refresh" }),
        Math.max(5000, lifetimeMs * 0.8));
    }
  }

  // --- socket events -------------------------------------------------------
  socket.on("welcome", (f) => {
    note(f.resumed ? "resumed" : "welcome", f);
    const previousId = state.selfId;
    state.selfId = f.peer_id;
    state.resume = f.resume ? { peer_id: f.peer_id, token: f.resume.token } : null;
    setIce(f.ice);
    for (const p of f.participants) state.names.set(p.peer_id, p.display_name);
    ui.$("call-count").textContent = describeRoom(f.participants, f.peer_id);
    if (f.resumed) {
      for (const frame of state.queue.splice(0)) socket.send(frame);
      const present = new Set(f.participants.map((p) => p.peer_id));
      for (const peerId of [...state.peers.keys()]) {
        if (!present.has(peerId)) dropPeer(peerId, { said: `${nameOf(peerId)} left the call.` });
      }
      let restarted = 0;
      for (const peer of state.peers.values()) {
        peer.setIceConfig(f.ice);
        if (peer.recoverIfBroken()) restarted += 1;
      }
      if (state.inCall) connectToCall();
      if (state.wasDisconnected) {
        ui.showStatus(restarted ? "Reconnected; restoring media…" : "Reconnected.", { tone: "ok" });
      }
    } else {
      state.queue.length = 0;
      if (previousId && previousId !== f.peer_id) {
        // The session could not be resumed: a clean rejoin under a new id.
        dropAllPeers();
        if (state.inCall) {
          ui.removeTile(previousId);
          ui.ensureTile(f.peer_id, { name: nameOf(f.peer_id), self: true });
          ui.setTileStream(f.peer_id, state.screen ? new MediaStream([state.screen]) : state.local);
          ui.setTileMedia(f.peer_id, { audio: state.audio, video: state.video, screen: Boolean(state.screen) });
        }
      }
      if (state.inCall) connectToCall();
      if (state.wasDisconnected) ui.showStatus("Reconnected; rejoined the call.", { tone: "ok" });
    }
    state.wasDisconnected = false;
    renderCallState();
  });

  socket.on("presence.join", (f) => {
    state.names.set(f.peer.peer_id, f.peer.display_name);
    if (!state.inCall) ui.$("call-count").textContent = describeRoom(presence.list(), state.selfId);
  });

  socket.on("presence.update", (f) => {
    const peerId = f.peer.peer_id;
    if (peerId === state.selfId) return;
    if (state.inCall && f.peer.in_call === false && state.peers.has(peerId)) {
      dropPeer(peerId, { said: `${f.peer.display_name} left the call.` });
      return;
    }
    if (state.peers.has(peerId)) ui.setTileMedia(peerId, f.peer);
    else if (state.inCall && f.peer.in_call) {
      // They entered the call and should offer to us. If we both entered at
      // once, neither saw the other in the call: then nobody would. Give
      // their offer a moment, then offer ourselves. The polite side waits
      // twice as long, so the two entry offers do not cross: a brand-new
      // connection that rolls back its first offer at once can come out with
      // no ICE candidates at all in Chromium (seen in CI; it was then stuck
      // until replaced). Glare later on is handled as before.
      const wait = isPolite(/** @type {string} */ (state.selfId), peerId) ? 2 * ENTRY_FALLBACK_MS : ENTRY_FALLBACK_MS;
      setTimeout(() => {
        if (state.inCall && !state.peers.has(peerId) && presence.peers.get(peerId)?.in_call) ensurePeer(peerId);
      }, wait);
    }
    if (!state.inCall) ui.$("call-count").textContent = describeRoom(presence.list(), state.selfId);
  });

  socket.on("presence.leave", (f) => {
    if (state.peers.has(f.peer_id)) {
      const why = f.reason === "timeout" ? " (connection lost)" : "";
      dropPeer(f.peer_id, { said: `${nameOf(f.peer_id)} left the call${why}.` });
    }
    if (!state.inCall) ui.$("call-count").textContent = describeRoom(presence.list(), state.selfId);
  });

  for (const type of ["signal.offer", "signal.answer", "signal.ice"]) {
    socket.on(type, (f) => {
      if (type !== "signal.ice") note("recv", f);
      if (!state.inCall || typeof f.from !== "string") return;
      // An offer from someone we have no connection with: they just entered.
      if (!state.peers.has(f.from) && type !== "signal.offer") return;
      // They replaced a stuck connection with a new one: so do we, to answer it.
      if (type === "signal.offer" && f.fresh === true) replacePeer(f.from);
      ensurePeer(f.from).receive(f);
    });
  }

  socket.on("turn.credentials", (f) => {
    setIce(f);
    for (const peer of state.peers.values()) peer.setIceConfig(f);
  });

  socket.on("error", (f) => {
    note(`error ${f.code}`, f);
    if (f.code === "unknown_peer" && f.peer_id) dropPeer(f.peer_id);
    if (f.code === "room_full") {
      callEndedHere(`The call is full (${f.capacity} people). You can still chat here; try Join again later.`);
    }
  });

  socket.on("call.left", (f) => {
    callEndedHere(f.reason === "joined_elsewhere"
      ? "You joined the call in another tab or window, so this tab left it. Chat stays open here; Join to bring the call back."
      : "You left the call.");
  });

  socket.onState((s, detail) => {
    if (state.left) return;
    if (s === "reconnecting") {
      state.wasDisconnected = true;
      const media = state.inCall ? " Your call continues while we reconnect." : "";
      ui.showStatus(`Connection to the server lost; reconnecting…${media}`, { tone: "warn", sticky: true });
    } else if (s === "closed") {
      ui.showStatus(`Disconnected from the room${detail?.code ? ` (code ${detail.code})` : ""}.`, { tone: "bad", sticky: true });
    }
    renderCallState();
  });

  // --- wiring --------------------------------------------------------------
  ui.$("join-call").addEventListener("click", joinCall);
  ui.$("leave-call").addEventListener("click", leaveCall);
  ui.$("rejoin").addEventListener("click", () => location.reload());
  ui.$("toggle-mic").addEventListener("click", toggleMic);
  ui.$("toggle-cam").addEventListener("click", toggleCam);
  ui.$("pre-mic").addEventListener("click", toggleMic);
  ui.$("pre-cam").addEventListener("click", toggleCam);
  ui.$("toggle-screen").addEventListener("click", toggleScreen);
  ui.$("camera-select").addEventListener("change", changeDevice);
  ui.$("mic-select").addEventListener("change", changeDevice);
  if (!navigator.mediaDevices?.getDisplayMedia) /** @type {HTMLButtonElement} */ (ui.$("toggle-screen")).hidden = true;
  ui.showPhase("prejoin");
  startPreview();

  const api = {
    helloExtras: () => {
      const extras = { in_call: state.inCall, audio: state.audio, video: state.video };
      if (state.resume) extras.resume = state.resume;
      return extras;
    },
    /** Per-peer link numbers (used by the browser tests and the bench). */
    async stats() {
      const out = {};
      for (const [peerId, peer] of state.peers) out[peerId] = { ...(await peer.stats()), state: peer.pc.connectionState };
      return out;
    },
    trace,
    join: joinCall,
    leave: leaveCall,
    state,
  };
  // @ts-ignore - exposed for the browser tests
  window.huddleCall = api;
  return api;
}

function describeRoom(participants, selfId) {
  const inCall = participants.filter((p) => p.in_call && p.peer_id !== selfId);
  if (inCall.length === 0) return "Nobody is in the call yet.";
  const names = inCall.map((p) => p.display_name).join(", ");
  return `In the call: ${names}.`;
}
