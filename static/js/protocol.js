// Every frame of the room socket, named and built in one place (docs/protocol.md).
// Features build what they send with the functions below and subscribe to what
// they receive by the names in IN; no other module spells a frame type. No DOM.

export const PROTOCOL_VERSION = 1;

/** Server -> client frame types. */
export const IN = Object.freeze({
  welcome: "welcome",
  pong: "pong",
  error: "error",
  presenceJoin: "presence.join",
  presenceUpdate: "presence.update",
  presenceLeave: "presence.leave",
  callLeft: "call.left",
  offer: "signal.offer",
  answer: "signal.answer",
  ice: "signal.ice",
  turnCredentials: "turn.credentials",
  chatAck: "chat.ack",
  chatMessage: "chat.message",
  chatMessages: "chat.messages",
  chatBatch: "chat.batch",
  chatPage: "chat.page",
  chatTyping: "chat.typing",
  chatHidden: "chat.hidden",
  modAction: "mod.action",
  modKicked: "mod.kicked",
  modBanned: "mod.banned",
  modMuted: "mod.muted",
  modMuteRequest: "mod.mute_request",
  modMuteAll: "mod.mute_all",
  roomAccess: "room.access",
  memberRole: "member.role",
  memberYou: "member.you",
  lobbyWaiting: "lobby.waiting",
  lobbyKnock: "lobby.knock",
  lobbyList: "lobby.list",
  lobbyResolved: "lobby.resolved",
  sessionEnded: "session.ended",
  handRaised: "hand.raised",
  handLowered: "hand.lowered",
  reaction: "reaction",
});

/** The signaling frame types (both directions use the same names). */
export const SIGNAL_TYPES = /** @type {const} */ ([IN.offer, IN.answer, IN.ice]);

/** The emoji `reaction.send` accepts (docs/protocol.md, "Raise hand and reactions"). */
export const REACTIONS = Object.freeze(["👍", "👏", "😂", "😮", "❤️", "🎉"]);

/**
 * @typedef {{type: string, [key: string]: any}} Frame
 * @typedef {{peer_id: string, token: string}} ResumeClaim
 */

// --- connection -------------------------------------------------------------
/** @param {object} extras in_call, audio, video, resume, password, ... @returns {Frame} */
export const hello = (extras = {}) => ({ type: "hello", v: PROTOCOL_VERSION, ...extras });
/** @param {number} t @returns {Frame} */
export const ping = (t) => ({ type: "ping", t });
/** Leave the room for good (the server closes with 1000). @returns {Frame} */
export const leave = () => ({ type: "leave" });

// --- presence and call -----------------------------------------------------
/**
 * @param {{audio?: boolean, video?: boolean, screen?: boolean, in_call?: boolean}} changes
 * @returns {Frame}
 */
export const presenceUpdate = (changes) => ({ type: "presence.update", ...changes });

/**
 * A signal to one peer, from a Peer's negotiator.
 * @param {"offer"|"answer"} kind @param {string} to @param {string} sdp
 * @param {{restart?: boolean, fresh?: boolean}} [flags]
 * @returns {Frame}
 */
export function signalDescription(kind, to, sdp, { restart = false, fresh = false } = {}) {
  /** @type {Frame} */
  const frame = { type: kind === "offer" ? IN.offer : IN.answer, to, sdp };
  if (restart) frame.restart = true;
  if (fresh) frame.fresh = true;
  return frame;
}
/** @param {string} to @param {RTCIceCandidateInit|null} candidate @returns {Frame} */
export const signalIce = (to, candidate) => ({ type: IN.ice, to, candidate });
/** @returns {Frame} */
export const turnRefresh = () => ({ type: "turn.refresh" });

// --- call telemetry (docs/protocol.md, "Call telemetry") -------------------
/**
 * One frame of link samples, one per remote peer (at most 16; the server refuses more).
 * @param {import("./stats-sample.js").Sample[]} samples @returns {Frame}
 */
export const callStats = (samples) => ({ type: "call.stats", samples: samples.slice(0, 16) });

// --- raise hand and reactions ----------------------------------------------
/** @returns {Frame} */
export const handRaise = () => ({ type: "hand.raise" });
/** Lower your own hand, or (moderators) someone else's. @param {string} [peerId] @returns {Frame} */
export const handLower = (peerId) => (peerId ? { type: "hand.lower", peer_id: peerId } : { type: "hand.lower" });
/** @param {string} emoji one of REACTIONS @returns {Frame} */
export const reactionSend = (emoji) => ({ type: "reaction.send", emoji });

// --- chat ------------------------------------------------------------------
/** @param {string} clientId @param {string} body @returns {Frame} */
export const chatSend = (clientId, body) => ({ type: "chat.send", client_id: clientId, body, ref: clientId });
/** @param {number} afterSeq @returns {Frame} */
export const chatSync = (afterSeq) => ({ type: "chat.sync", after_seq: afterSeq });
/** @param {number|null} beforeSeq null: the newest page @returns {Frame} */
export const chatHistory = (beforeSeq) =>
  beforeSeq === null ? { type: "chat.history" } : { type: "chat.history", before_seq: beforeSeq };
/** @returns {Frame} */
export const chatTyping = () => ({ type: "chat.typing" });

// --- moderation --------------------------------------------------------------
/** @param {string|undefined} reason */
const withReason = (reason) => (reason ? { reason } : {});
/** @param {number} memberId @param {string} [reason] @returns {Frame} */
export const modKick = (memberId, reason) => ({ type: "mod.kick", member_id: memberId, ...withReason(reason) });
/** @param {number} memberId @param {string} [reason] @returns {Frame} */
export const modBan = (memberId, reason) => ({ type: "mod.ban", member_id: memberId, ...withReason(reason) });
/** @param {number} memberId @param {{request?: boolean, reason?: string}} [opts] @returns {Frame} */
export const modMute = (memberId, { request = false, reason } = {}) =>
  ({ type: "mod.mute", member_id: memberId, ...(request ? { request: true } : {}), ...withReason(reason) });
/** @returns {Frame} */
export const modMuteAll = () => ({ type: "mod.mute_all" });
/** @param {boolean} locked @returns {Frame} */
export const modLock = (locked) => ({ type: "mod.lock", locked });
/** @param {string|null} password null clears it @returns {Frame} */
export const modPassword = (password) => ({ type: "mod.password", password });
/** @param {boolean} enabled @returns {Frame} */
export const modLobby = (enabled) => ({ type: "mod.lobby", enabled });
/** @returns {Frame} */
export const modLobbyList = () => ({ type: "mod.lobby_list" });
/** @param {string} knockId @returns {Frame} */
export const modAdmit = (knockId) => ({ type: "mod.admit", knock_id: knockId });
/** @param {string} knockId @param {string} [reason] @returns {Frame} */
export const modReject = (knockId, reason) => ({ type: "mod.reject", knock_id: knockId, ...withReason(reason) });
/** @param {number} memberId @param {"moderator"|"participant"} role @returns {Frame} */
export const modSetRole = (memberId, role) => ({ type: "mod.set_role", member_id: memberId, role });
/** @param {number} seq @returns {Frame} */
export const modHideMessage = (seq) => ({ type: "mod.hide_message", seq });
