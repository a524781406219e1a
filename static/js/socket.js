// The room socket: connect, handshake, heartbeat, reconnect. No DOM.
import { backoffDelay } from "./backoff.js";
import { PROTOCOL_VERSION, hello, ping } from "./protocol.js";

export { PROTOCOL_VERSION };
// A ping every 2 s; a socket that then stays silent (no pong, no frame at all)
// for 2.5 s is dead: noticed within 4.5 s of dying, whatever the browser thinks.
const HEARTBEAT_MS = 2000;
const PONG_DEADLINE_FACTOR = 1.25;
// Close codes after which reconnecting cannot help (docs/protocol.md, Close
// codes). 4424 waits for the user to type the room's password (moderation.js
// starts the socket again). Not 1000: the server sends it only after our own
// leave (we stopped first), but a proxy in between may close with it too.
export const FINAL_CLOSE_CODES = new Set([4001, 4003, 4005, 4400, 4401, 4403, 4404, 4424]);
// What the user is told for each close code the server sends (the state
// callback's detail.reason; browsers drop the server's own reason text).
export const CLOSE_REASONS = {
  1000: "The connection was closed.",
  4500: "Server error; reconnecting.",
  4503: "This server is restarting; moving to another.",
  4001: "You were removed from this room.",
  4003: "You are banned from this room.",
  4005: "This session continued in a newer connection (another tab or a reconnect).",
  4400: "This page is out of date; reload it.",
  4401: "You are not logged in (or you logged out); log in to join.",
  4403: "You are not a member of this room.",
  4404: "There is no such room.",
  4408: "The server did not hear from this page in time; reconnecting.",
  4409: "The room is full; retrying.",
  4410: "The server lost track of this connection; reconnecting.",
  4423: "The room is locked; retrying.",
  4424: "This room needs a password.",
  4429: "Too many connections or messages from your network; retrying shortly.",
};

/**
 * @typedef {{type: string, [key: string]: any}} Frame
 * @typedef {"connecting"|"open"|"reconnecting"|"offline"|"closed"} SocketState
 */

export class RoomSocket {
  /**
   * @param {string} url ws(s):// URL of the room socket
   * @param {{helloExtras?: () => object, WebSocketImpl?: typeof WebSocket,
   *          heartbeatMs?: number, pongDeadlineMs?: number, backoff?: object}} [opts]
   */
  constructor(url, opts = {}) {
    this.url = url;
    this.opts = opts;
    /** @type {Map<string, Set<(frame: Frame) => void>>} */
    this.handlers = new Map();
    /** @type {((state: SocketState, detail?: object) => void)[]} */
    this.stateListeners = [];
    this.attempt = 0;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    /** the browser says there is no network: no reconnect until it says there is */
    this.offline = false;
    this.lastPong = 0;
    /** @type {SocketState|undefined} */
    this.state = undefined;
    /** @type {number} ms the server asked us to wait before reconnecting */
    this.retryAfterMs = 0;
  }

  /** @param {string} type @param {(frame: Frame) => void} fn */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return this;
  }

  onState(fn) { this.stateListeners.push(fn); return this; }

  setState(state, detail = {}) {
    this.state = state;
    for (const fn of this.stateListeners) fn(state, detail);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    const ws = new Impl(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.send(hello(this.opts.helloExtras?.() ?? {}), true);
    };
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      // Anything heard proves the socket alive (a busy server's pong may lag its frames).
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = null;
      if (frame.type === "error" && frame.code === "rate_limited" && !this.ready) {
        // A refused connection (close 4429 follows): come back no sooner.
        this.retryAfterMs = Math.max(0, Number(frame.retry_after) || 0) * 1000;
      }
      if (frame.type === "welcome") {
        this.ready = true;
        this.attempt = 0;
        this.lastPong = Date.now();
        this.startHeartbeat();
        this.setState("open");
      } else if (frame.type === "pong") {
        this.lastPong = Date.now();
        // The server reaped us (a long stall): start over; the resume will
        // fail and the welcome gives a fresh session.
        if (frame.present === false) queueMicrotask(() => this.forceReconnect());
      }
      for (const fn of this.handlers.get(frame.type) ?? []) fn(frame);
      for (const fn of this.handlers.get("*") ?? []) fn(frame);
    };
    ws.onclose = (event) => this.handleClose(ws, event.code, event.reason);
  }

  handleClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ready = false;
    this.stopHeartbeat();
    this.ws = null;
    reason = reason || CLOSE_REASONS[code] || "";
    if (this.stopped || FINAL_CLOSE_CODES.has(code)) {
      this.setState("closed", { code, reason });
      return;
    }
    if (this.offline) {
      // Retrying cannot help until the browser is back online (setOnline(true)).
      clearTimeout(this.retryTimer);
      this.setState("offline", { code, reason });
      return;
    }
    // The server said when it will take us again (4429 after rate_limited):
    // an earlier try would only be refused and spend the address' budget.
    const told = code === 4429 ? this.retryAfterMs ?? 0 : 0;
    this.retryAfterMs = 0;
    const delay = Math.max(backoffDelay(this.attempt, this.opts.backoff), told);
    this.attempt += 1;
    this.setState("reconnecting", { code, reason, attempt: this.attempt, delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    const every = this.opts.heartbeatMs ?? HEARTBEAT_MS;
    const deadline = this.opts.pongDeadlineMs ?? Math.round(every * PONG_DEADLINE_FACTOR);
    this.heartbeat = setInterval(() => {
      if (!this.send(ping(Date.now()))) return;
      // A socket that never fires close (sleep, dead NAT, a stalled network):
      // silence until the deadline means it is gone.
      if (!this.deadlineTimer) this.deadlineTimer = setTimeout(() => this.forceReconnect(), deadline);
    }, every);
  }

  stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  /**
   * The browser's online/offline events. Offline: say so at once and drop the
   * socket (it is stalled, not closed); online: connect again at once, without
   * waiting for the backoff timer (the network, not the server, was the problem).
   * @param {boolean} online
   */
  setOnline(online) {
    if (this.stopped || online === !this.offline) return;
    this.offline = !online;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!online) {
      if (this.ws) this.forceReconnect();
      else this.setState("offline", {});
      return;
    }
    if (this.ws && this.ws.readyState <= 1) return; // a socket is already on its way
    this.ws = null;
    this.open();
  }

  forceReconnect() {
    const ws = this.ws;
    if (!ws) return;
    try { ws.close(); } catch { /* already closing */ }
    this.handleClose(ws, 1006, this.offline ? "offline" : "heartbeat timeout");
  }

  /** @param {Frame} frame @param {boolean} [beforeReady] @returns {boolean} sent */
  send(frame, beforeReady = false) {
    if (!this.ws || this.ws.readyState !== 1 || (!this.ready && !beforeReady)) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopHeartbeat();
    this.ws?.close(1000);
  }
}
