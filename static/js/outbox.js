// The chat outbox: messages the server has not yet acknowledged. No DOM.
//
// Every message gets a client_id when it is typed; it is kept in storage
// (localStorage in the browser) until the server acknowledges it, so a socket
// drop or a page reload cannot lose it, and a resend with the same client_id
// returns the original message instead of a second copy (docs/protocol.md).

/**
 * @typedef {"sending"|"sent"|"failed"} OutboxStatus
 * @typedef {{client_id: string, body: string, status: OutboxStatus, seq?: number,
 *            created: number, lastSent?: number, notBefore?: number, error?: string,
 *            unavailable?: number}} OutboxItem
 * @typedef {{getItem(key: string): string|null, setItem(key: string, value: string): void,
 *            removeItem(key: string): void}} Storage
 */

// Codes after which the same frame may succeed later: wait and resend by itself.
// Every other code is a refusal of this message (bad_request for text that
// cannot be stored, body_too_long, forbidden, a code this client does not
// know yet): resending the same frame would be refused again, forever, from
// storage after every reload. The user decides: retry or discard.
const TRANSIENT = new Set(["rate_limited", "unavailable"]);
// A message the server answers "unavailable" this many times in a row is
// failed too: something about it keeps failing, and the user should see that.
export const MAX_UNAVAILABLE = 8;

export function newClientId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

export class Outbox {
  /**
   * @param {{storage?: Storage|null, key: string, now?: () => number,
   *          newId?: () => string, resendMs?: number}} opts
   */
  constructor({ storage = null, key, now = Date.now, newId = newClientId, resendMs = 5000 }) {
    this.storage = storage;
    this.key = key;
    this.now = now;
    this.newId = newId;
    this.resendMs = resendMs;
    /** @type {Map<string, OutboxItem>} in the order typed */
    this.items = new Map();
    this.load();
  }

  load() {
    let saved = [];
    try {
      saved = JSON.parse(this.storage?.getItem(this.key) ?? "[]");
    } catch {
      saved = [];
    }
    if (!Array.isArray(saved)) saved = [];
    for (const raw of saved) {
      if (!raw || typeof raw.client_id !== "string" || typeof raw.body !== "string") continue;
      // Whatever was in flight when the page went away is due again now.
      const status = raw.status === "failed" ? "failed" : "sending";
      this.items.set(raw.client_id, {
        client_id: raw.client_id, body: raw.body, status, created: raw.created ?? 0,
        error: raw.error,
      });
    }
  }

  save() {
    if (!this.storage) return;
    const unsent = [...this.items.values()]
      .filter((i) => i.status !== "sent")
      .map(({ client_id, body, status, created, error }) => ({ client_id, body, status, created, error }));
    try {
      if (unsent.length) this.storage.setItem(this.key, JSON.stringify(unsent));
      else this.storage.removeItem(this.key);
    } catch {
      /* storage full or blocked: the outbox still works for this page */
    }
  }

  /** @param {string} body @returns {OutboxItem} */
  add(body) {
    const item = { client_id: this.newId(), body, status: /** @type {OutboxStatus} */ ("sending"), created: this.now() };
    this.items.set(item.client_id, item);
    this.save();
    return item;
  }

  /** @param {string} clientId */
  get(clientId) { return this.items.get(clientId); }

  /** Items in typing order. */
  list() { return [...this.items.values()]; }

  /** Items to (re)send now: sending, never sent or unacknowledged for resendMs. */
  due() {
    const now = this.now();
    return this.list().filter(
      (i) => i.status === "sending"
        && (i.notBefore === undefined || now >= i.notBefore)
        && (i.lastSent === undefined || now - i.lastSent >= this.resendMs),
    );
  }

  /** Record that a frame for clientId went out on the socket. */
  markSent(clientId) {
    const item = this.items.get(clientId);
    if (item) item.lastSent = this.now();
  }

  /** A new socket: nothing in flight on it, so everything unacknowledged is due. */
  reconnected() {
    for (const item of this.items.values()) delete item.lastSent;
  }

  /**
   * The server acknowledged: durable with this seq. Returns the item (or
   * undefined for an ack of something this outbox does not hold).
   */
  ack(clientId, seq) {
    const item = this.items.get(clientId);
    if (!item) return undefined;
    item.status = "sent";
    item.seq = seq;
    delete item.error;
    this.save();
    return item;
  }

  /** The message is in the room's log now; the outbox can forget it. */
  forget(clientId) {
    if (this.items.get(clientId)?.status === "sent") this.items.delete(clientId);
  }

  /**
   * An error frame for clientId. Rate limits wait and resend by themselves;
   * permanent errors mark the item failed (the user may retry or edit).
   * @returns {OutboxItem|undefined}
   */
  error(clientId, code, retryAfterS = 0) {
    const item = this.items.get(clientId);
    if (!item || item.status !== "sending") return undefined;
    if (code === "unavailable") item.unavailable = (item.unavailable ?? 0) + 1;
    if (TRANSIENT.has(code) && (item.unavailable ?? 0) < MAX_UNAVAILABLE) {
      item.notBefore = this.now() + Math.max(0, retryAfterS) * 1000;
      delete item.lastSent;
    } else {
      item.status = "failed";
      item.error = String(code);
      delete item.unavailable;
    }
    this.save();
    return item;
  }

  /** The user pressed retry on a failed item. */
  retry(clientId) {
    const item = this.items.get(clientId);
    if (!item || item.status !== "failed") return undefined;
    item.status = "sending";
    delete item.error;
    delete item.unavailable;
    delete item.lastSent;
    delete item.notBefore;
    this.save();
    return item;
  }

  /** The user discarded a failed item. */
  discard(clientId) {
    const item = this.items.get(clientId);
    if (item && item.status === "failed") {
      this.items.delete(clientId);
      this.save();
    }
  }
}
