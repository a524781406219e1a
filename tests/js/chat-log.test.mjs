import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatLog } from "../../static/js/chat-log.js";

const m = (...seqs) => seqs.map((seq) => ({ seq, body: `m${seq}` }));
const seqs = (list) => list.map((x) => x.seq);

test("start from the newest page, then live messages in order", () => {
  const log = new ChatLog();
  assert.deepEqual(seqs(log.start(m(4, 5), true)), [4, 5]);
  assert.equal(log.oldestSeq, 4);
  assert.deepEqual(seqs(log.receive(m(6)).released), [6]);
});

test("duplicates are dropped", () => {
  const log = new ChatLog();
  log.start(m(1, 2), false);
  assert.deepEqual(log.receive(m(2, 1, 3, 3)).released.map((x) => x.seq), [3]);
  assert.deepEqual(log.receive(m(3)).released, []);
});

test("out of order is held and released in order; a hole reports a gap", () => {
  const log = new ChatLog();
  log.start([], false);
  let r = log.receive(m(2, 3));
  assert.deepEqual(r, { released: [], gap: true });
  r = log.receive(m(1));
  assert.deepEqual(seqs(r.released), [1, 2, 3]);
  assert.equal(r.gap, false);
});

test("live messages before the first page are buffered, then merged without duplicates", () => {
  const log = new ChatLog();
  assert.deepEqual(log.receive(m(5, 6)), { released: [], gap: false });
  assert.deepEqual(seqs(log.start(m(3, 4, 5), true)), [3, 4, 5, 6]);
});

test("older pages prepend only what is older", () => {
  const log = new ChatLog();
  log.start(m(5, 6), true);
  assert.deepEqual(seqs(log.older(m(3, 4, 5), true)), [3, 4]);
  assert.equal(log.oldestSeq, 3);
  assert.equal(log.hasOlder, true);
  log.older(m(1, 2), false);
  assert.equal(log.hasOlder, false);
});

test("an ack beyond what we hold means we are behind", () => {
  const log = new ChatLog();
  log.start(m(1), false);
  assert.equal(log.behind(1), false);
  assert.equal(log.behind(2), true);
});

test("hidden slots count as delivered", () => {
  const log = new ChatLog();
  log.start([], false);
  const r = log.receive([{ seq: 1, hidden: true }, { seq: 2, body: "x" }]);
  assert.deepEqual(seqs(r.released), [1, 2]);
});
