import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { RoomSocket, FINAL_CLOSE_CODES, CLOSE_REASONS } from "../../static/js/socket.js";
import { FakeWS, tick } from "./fake-ws.mjs";

// The close-code table of docs/protocol.md: code -> "client reconnects?" column.
function documentedCloseCodes() {
  const doc = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  const section = doc.split("## Close codes\n")[1].split("\n## ")[0];
  const rows = new Map();
  for (const line of section.split("\n")) {
    const m = line.match(/^\| (\d{4}) \| .* \| ([^|]+) \|$/);
    if (m) rows.set(Number(m[1]), m[2].trim());
  }
  return rows;
}

test("socket.js stops exactly on the codes the doc calls final, and words each one", () => {
  const rows = documentedCloseCodes();
  assert.ok(rows.size >= 14, `parsed ${rows.size} rows`);
  for (const [code, reconnects] of rows) {
    const final = reconnects.startsWith("no") || reconnects.startsWith("after the user");
    assert.equal(FINAL_CLOSE_CODES.has(code), final, `${code}: doc says "${reconnects}"`);
    if (code >= 4000) assert.ok(CLOSE_REASONS[code], `no words for ${code}`);
  }
  for (const code of FINAL_CLOSE_CODES) assert.ok(rows.has(code), `${code} is not documented`);
});

for (const code of [4001, 4003, 4005, 4400, 4401, 4403, 4404]) {
  test(`close ${code} is final and tells the user why through onState`, async () => {
    FakeWS.instances = [];
    const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 1, cap: 1 } });
    const states = [];
    s.onState((st, d) => states.push([st, d.code, d.reason]));
    s.start();
    await tick();
    FakeWS.instances[0].serverCloses(code);
    await tick(); await tick();
    assert.equal(FakeWS.instances.length, 1, "no reconnect");
    assert.deepEqual(states.at(-1), ["closed", code, CLOSE_REASONS[code]]);
  });
}

for (const code of [1006, 4408, 4409, 4410, 4423, 4429, 4500, 4503]) {
  test(`close ${code} reconnects`, async () => {
    FakeWS.instances = [];
    const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 1, cap: 1 } });
    s.start();
    await tick();
    FakeWS.instances[0].serverCloses(code);
    await tick(); await tick();
    assert.equal(FakeWS.instances.length, 2);
    s.stop();
  });
}

test("a connection refused with rate_limited + 4429 waits retry_after before retrying", async () => {
  FakeWS.instances = [];
  const s = new RoomSocket("ws://x", { WebSocketImpl: FakeWS, backoff: { base: 1, cap: 1 } });
  const states = [];
  s.onState((st, d) => states.push([st, d]));
  s.start();
  await tick();
  FakeWS.instances[0].serverSends({ type: "error", code: "rate_limited", retry_after: 0.08 });
  FakeWS.instances[0].serverCloses(4429);
  const [state, detail] = states.at(-1);
  assert.equal(state, "reconnecting");
  assert.ok(detail.delay >= 80, `retried after ${detail.delay} ms, told 80`);
  await tick();
  assert.equal(FakeWS.instances.length, 1, "not before retry_after");
  const deadline = Date.now() + 2000;
  while (FakeWS.instances.length < 2 && Date.now() < deadline) await tick();
  assert.equal(FakeWS.instances.length, 2, "retried once retry_after passed");
  // The wait applied to that refusal only: a later drop uses the backoff alone.
  FakeWS.instances[1].serverSends({ type: "welcome" });
  FakeWS.instances[1].serverCloses(1006);
  assert.ok(states.at(-1)[1].delay <= 1);
  s.stop();
});
