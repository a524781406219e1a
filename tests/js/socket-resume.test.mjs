import { test } from "node:test";
import assert from "node:assert/strict";
import { RoomSocket } from "../../static/js/socket.js";
import { FakeWS, tick } from "./fake-ws.mjs";


test("a reconnect's hello carries the resume claim the call feature holds", async () => {
  FakeWS.instances = [];
  let claim = null;
  const s = new RoomSocket("ws://x", {
    WebSocketImpl: FakeWS,
    backoff: { base: 1, cap: 1 },
    helloExtras: () => (claim ? { resume: claim } : {}),
  });
  s.on("welcome", (f) => { claim = { peer_id: f.peer_id, token: f.resume.token }; });
  s.start();
  await tick();
  FakeWS.instances[0].serverSends({ type: "welcome", peer_id: "p1", resume: { token: "t1" } });
  FakeWS.instances[0].serverCloses(1006);
  await tick(); await tick();
  assert.equal(FakeWS.instances.length, 2);
  assert.deepEqual(FakeWS.instances[1].sent[0].resume, { peer_id: "p1", token: "t1" });
  s.stop();
});

test("pong with present: false (the server reaped us) forces a fresh connection", async () => {
  FakeWS.instances = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 1, cap: 1 } });
  s.start();
  await tick();
  FakeWS.instances[0].serverSends({ type: "welcome", peer_id: "p1" });
  FakeWS.instances[0].serverSends({ type: "pong", t: 1, present: true });
  await tick();
  assert.equal(FakeWS.instances.length, 1, "present: true changes nothing");
  FakeWS.instances[0].serverSends({ type: "pong", t: 2, present: false });
  await tick(); await tick();
  assert.equal(FakeWS.instances.length, 2, "reconnected");
  s.stop();
});

test("the replaced code 4005 (a resume took over) never reconnects the old socket", async () => {
  FakeWS.instances = [];
  const states = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 1, cap: 1 } });
  s.onState((st, d) => states.push([st, d.code]));
  s.start();
  await tick();
  FakeWS.instances[0].serverSends({ type: "welcome" });
  FakeWS.instances[0].serverCloses(4005);
  await tick(); await tick();
  assert.equal(FakeWS.instances.length, 1);
  assert.deepEqual(states.at(-1), ["closed", 4005]);
});
