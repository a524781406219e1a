// The browser's offline/online events and the heartbeat deadline (docs/protocol.md, Heartbeats).
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { RoomSocket } from "../../static/js/socket.js";
import { FakeWS } from "./fake-ws.mjs";

async function openSocket(opts = {}) {
  FakeWS.instances = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 60000, cap: 60000 }, ...opts });
  const states = [];
  s.onState((st) => states.push(st));
  s.start();
  await Promise.resolve(); // FakeWS opens in a microtask
  FakeWS.instances[0].serverSends({ type: "welcome" });
  return { s, states };
}

test("offline: said at once, no retry timer; online: a new socket at once, not after the backoff", async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  try {
    const { s, states } = await openSocket();
    s.setOnline(false);
    assert.equal(states.at(-1), "offline");
    assert.equal(s.retryTimer, undefined, "no reconnect while offline");
    mock.timers.tick(120000);
    assert.equal(FakeWS.instances.length, 1, "nothing tried while offline");
    s.setOnline(true);
    assert.equal(FakeWS.instances.length, 2, "reconnects at once (the backoff here would be up to 60 s)");
    s.stop();
  } finally {
    mock.timers.reset();
  }
});

test("a stalled socket (no close, no pong) is noticed within 5 s with the default heartbeat", async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
  try {
    const { s, states } = await openSocket();
    for (let t = 0; t < 4999; t += 100) mock.timers.tick(100);
    assert.equal(states.at(-1), "reconnecting", "declared dead before 5 s of silence");
    assert.ok(FakeWS.instances[0].sent.some((f) => f.type === "ping"));
    s.stop();
  } finally {
    mock.timers.reset();
  }
});

test("any frame from the server counts as alive: a slow pong behind chat traffic is no death", async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
  try {
    const { s, states } = await openSocket({ heartbeatMs: 1000, pongDeadlineMs: 1500 });
    for (let i = 0; i < 10; i++) {
      mock.timers.tick(1000);
      FakeWS.instances[0].serverSends({ type: "chat.message", seq: i + 1 });
    }
    assert.equal(states.at(-1), "open");
    assert.equal(FakeWS.instances.length, 1);
    s.stop();
  } finally {
    mock.timers.reset();
  }
});
