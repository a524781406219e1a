import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyLink } from "../../static/js/call-quality.js";

const s = (lost, received, rtt = 0.02, frames = 0) => ({ packetsLost: lost, packetsReceived: received, rtt, fps: 24, framesDecoded: frames });

test("no previous sample is unknown", () => {
  assert.equal(classifyLink(null, s(0, 100)), "unknown");
});

test("loss is measured over the interval, so recovery shows", () => {
  assert.equal(classifyLink(s(0, 100), s(20, 180)), "poor"); // 20 of 100 lost
  assert.equal(classifyLink(s(20, 180), s(20, 280)), "good"); // none lost since
  assert.equal(classifyLink(s(0, 1000), s(3, 1097)), "fair");
});

test("high round-trip time degrades the link", () => {
  assert.equal(classifyLink(s(0, 100), s(0, 200, 0.3)), "fair");
  assert.equal(classifyLink(s(0, 100), s(0, 200, 0.9)), "poor");
});

test("frozen video with an expected stream is poor even without packets", () => {
  assert.equal(classifyLink(s(0, 100, 0.02, 50), s(0, 100, 0.02, 50), { expectVideo: true }), "poor");
  assert.equal(classifyLink(s(0, 100, 0.02, 50), s(0, 100, 0.02, 50)), "unknown");
});
