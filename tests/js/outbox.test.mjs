import { test } from "node:test";
import assert from "node:assert/strict";
import { Outbox } from "../../static/js/outbox.js";

class MemoryStorage {
  constructor() { this.data = new Map(); }
  getItem(k) { return this.data.has(k) ? this.data.get(k) : null; }
  setItem(k, v) { this.data.set(k, String(v)); }
  removeItem(k) { this.data.delete(k); }
}

function make(storage = new MemoryStorage(), clock = { t: 1000 }) {
  let n = 0;
  const box = new Outbox({ storage, key: "ob", now: () => clock.t, newId: () => `id${++n}`, resendMs: 5000 });
  return { box, storage, clock };
}

test("a new message is sending, due, and persisted until acknowledged", () => {
  const { box, storage } = make();
  const item = box.add("hello");
  assert.equal(item.status, "sending");
  assert.deepEqual(box.due().map((i) => i.client_id), ["id1"]);
  assert.match(storage.getItem("ob"), /hello/);
  box.markSent("id1");
  assert.deepEqual(box.due(), []);
  box.ack("id1", 7);
  assert.equal(box.get("id1").status, "sent");
  assert.equal(box.get("id1").seq, 7);
  assert.equal(storage.getItem("ob"), null);
});

test("an unacknowledged message is resent after resendMs, with the same client_id", () => {
  const { box, clock } = make();
  box.add("a");
  box.markSent("id1");
  clock.t += 4999;
  assert.deepEqual(box.due(), []);
  clock.t += 1;
  assert.deepEqual(box.due().map((i) => i.client_id), ["id1"]);
});

test("a reconnect makes every unacknowledged message due at once", () => {
  const { box } = make();
  box.add("a"); box.add("b");
  box.markSent("id1"); box.markSent("id2");
  box.ack("id1", 1);
  box.reconnected();
  assert.deepEqual(box.due().map((i) => i.client_id), ["id2"]);
});

test("a reload restores unsent messages as due, in typing order", () => {
  const storage = new MemoryStorage();
  const first = make(storage).box;
  first.add("one"); first.add("two"); first.add("three");
  first.markSent("id1"); first.markSent("id2");
  first.ack("id2", 4);
  const again = new Outbox({ storage, key: "ob" });
  assert.deepEqual(again.list().map((i) => [i.body, i.status]), [["one", "sending"], ["three", "sending"]]);
  assert.deepEqual(again.due().map((i) => i.client_id), ["id1", "id3"]);
});

test("corrupt storage is ignored", () => {
  const storage = new MemoryStorage();
  storage.setItem("ob", "{not json");
  assert.deepEqual(new Outbox({ storage, key: "ob" }).list(), []);
  storage.setItem("ob", JSON.stringify([{ client_id: 5 }, null, { client_id: "x", body: "ok" }]));
  assert.deepEqual(new Outbox({ storage, key: "ob" }).list().map((i) => i.body), ["ok"]);
});

test("rate_limited waits retry_after then resends by itself", () => {
  const { box, clock } = make();
  box.add("a");
  box.markSent("id1");
  box.error("id1", "rate_limited", 2);
  assert.equal(box.get("id1").status, "sending");
  clock.t += 1999;
  assert.deepEqual(box.due(), []);
  clock.t += 1;
  assert.deepEqual(box.due().map((i) => i.client_id), ["id1"]);
});

test("unavailable (a write that failed) also waits retry_after and resends", () => {
  const { box, clock } = make();
  box.add("a");
  box.markSent("id1");
  box.error("id1", "unavailable", 1);
  assert.equal(box.get("id1").status, "sending");
  assert.deepEqual(box.due(), []);
  clock.t += 1000;
  assert.deepEqual(box.due().map((i) => i.client_id), ["id1"]);
});

test("permanent errors fail the message until the user retries; failed survives reload", () => {
  const { box, storage } = make();
  box.add("x".repeat(5000));
  box.error("id1", "body_too_long");
  assert.equal(box.get("id1").status, "failed");
  assert.deepEqual(box.due(), []);
  const reloaded = new Outbox({ storage, key: "ob" });
  assert.equal(reloaded.get("id1").status, "failed");
  reloaded.retry("id1");
  assert.deepEqual(reloaded.due().map((i) => i.client_id), ["id1"]);
  reloaded.error("id1", "empty_body");
  reloaded.discard("id1");
  assert.deepEqual(reloaded.list(), []);
  assert.equal(storage.getItem("ob"), null);
});

test("a late error or duplicate ack after the ack changes nothing", () => {
  const { box } = make();
  box.add("a");
  box.ack("id1", 3);
  assert.equal(box.error("id1", "rate_limited", 1), undefined);
  box.ack("id1", 3);
  assert.equal(box.get("id1").status, "sent");
  box.forget("id1");
  assert.equal(box.get("id1"), undefined);
  assert.equal(box.ack("zzz", 9), undefined);
});

test("bad_request (text the server cannot store) fails the message instead of resending it forever", () => {
  const storage = new MemoryStorage();
  const { box, clock } = make(storage);
  box.add("x\ud800y");
  box.markSent("id1");
  box.error("id1", "bad_request");
  assert.equal(box.get("id1").status, "failed");
  assert.equal(box.get("id1").error, "bad_request");
  clock.t += 60_000;
  assert.deepEqual(box.due(), []);
  // Nor after a reload: it waits for the user's retry or discard.
  const reloaded = new Outbox({ storage, key: "ob" });
  assert.equal(reloaded.get("id1").status, "failed");
  assert.deepEqual(reloaded.due(), []);
  reloaded.discard("id1");
  assert.equal(storage.getItem("ob"), null);
});

test("an error code this client does not know is a refusal, not a reason to resend", () => {
  const { box } = make();
  box.add("a");
  box.markSent("id1");
  box.error("id1", "some_future_code");
  assert.equal(box.get("id1").status, "failed");
  assert.deepEqual(box.due(), []);
});

test("a message answered unavailable again and again ends failed, with retry", async () => {
  const { MAX_UNAVAILABLE } = await import("../../static/js/outbox.js");
  const { box, clock } = make();
  box.add("a");
  for (let i = 1; i < MAX_UNAVAILABLE; i++) {
    box.markSent("id1");
    box.error("id1", "unavailable", 1);
    assert.equal(box.get("id1").status, "sending", `after ${i}`);
    clock.t += 1000;
  }
  box.markSent("id1");
  box.error("id1", "unavailable", 1);
  assert.equal(box.get("id1").status, "failed");
  assert.equal(box.get("id1").error, "unavailable");
  box.retry("id1");
  box.markSent("id1");
  box.error("id1", "unavailable", 1);
  assert.equal(box.get("id1").status, "sending", "a retry starts counting again");
});
