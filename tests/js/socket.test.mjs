import { test } from "node:test";
import assert from "node:assert/strict";
import { RoomSocket } from "../../static/js/socket.js";
import { FakeWS, tick } from "./fake-ws.mjs";


test("hello carries extras; welcome makes it open", async () => {
  FakeWS.instances = [];
  const states = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, helloExtras: () => ({ last_seq: 7 }) });
  s.onState((st) => states.push(st));
  s.start();
  await tick();
  const ws = FakeWS.instances[0];
  assert.deepEqual(ws.sent[0], { type: "hello", v: 1, last_seq: 7 });
  assert.equal(s.send({ type: "x" }), false, "nothing but hello before welcome");
  ws.serverSends({ type: "welcome", peer_id: "p1", participants: [] });
  assert.equal(s.send({ type: "x" }), true);
  assert.deepEqual(states, ["connecting", "open"]);
  s.stop();
});

test("an abnormal close reconnects with backoff; a final code does not", async () => {
  FakeWS.instances = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 1, cap: 2 } });
  const states = [];
  s.onState((st, d) => states.push([st, d.code]));
  s.start();
  await tick();
  FakeWS.instances[0].serverSends({ type: "welcome" });
  FakeWS.instances[0].serverCloses(1006);
  await tick(); await tick();
  assert.equal(FakeWS.instances.length, 2, "reconnected");
  FakeWS.instances[1].serverSends({ type: "welcome" });
  FakeWS.instances[1].serverCloses(4003);
  await tick(); await tick();
  assert.equal(FakeWS.instances.length, 2, "banned: no reconnect");
  assert.deepEqual(states.at(-1), ["closed", 4003]);
});

test("missing pongs force a reconnect (socket that never closes)", async () => {
  FakeWS.instances = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, heartbeatMs: 10, backoff: { base: 1, cap: 1 } });
  s.start();
  await tick();
  FakeWS.instances[0].serverSends({ type: "welcome" });
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(FakeWS.instances.length >= 2, "heartbeat timeout reopened the socket");
  assert.ok(FakeWS.instances[0].sent.some((f) => f.type === "ping"));
  s.stop();
});
