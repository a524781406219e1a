// The room socket: connect, handshake, heartbeat, reconnect. No DOM.
import { backoffDelay } from "./backoff.js";

export const PROTOCOL_VERSION = 1;
const HEARTBEAT_MS = 10000;
// Close codes after which reconnecting cannot help (docs/protocol.md).
const FINAL_CLOSE_CODES = new Set([4001, 4003, 4005, 4400, 4401, 4403, 4404]);

/**
 * @typedef {{type: string, [key: string]: any}} Frame
 * @typedef {"connecting"|"open"|"reconnecting"|"closed"} SocketState
 */

export class RoomSocket {
  /**
   * @param {string} url ws(s):// URL of the room socket
   * @param {{helloExtras?: () => object, WebSocketImpl?: typeof WebSocket,
   *          heartbeatMs?: number, backoff?: object}} [opts]
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
    this.lastPong = 0;
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
      this.send({ type: "hello", v: PROTOCOL_VERSION, ...(this.opts.helloExtras?.() ?? {}) }, true);
    };
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
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
    if (this.stopped || FINAL_CLOSE_CODES.has(code)) {
      this.setState("closed", { code, reason });
      return;
    }
    const delay = backoffDelay(this.attempt, this.opts.backoff);
    this.attempt += 1;
    this.setState("reconnecting", { code, attempt: this.attempt, delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    const every = this.opts.heartbeatMs ?? HEARTBEAT_MS;
    this.heartbeat = setInterval(() => {
      // A socket that never fires close (sleep, dead NAT): no pong for two
      // beats means it is gone, whatever the browser thinks.
      if (Date.now() - this.lastPong > 2.5 * every) {
        this.forceReconnect();
        return;
      }
      this.send({ type: "ping", t: Date.now() });
    }, every);
  }

  stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  forceReconnect() {
    const ws = this.ws;
    if (!ws) return;
    try { ws.close(); } catch { /* already closing */ }
    this.handleClose(ws, 1006, "heartbeat timeout");
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
    this.stopHeartbeat();
    this.ws?.close(1000);
  }
}
