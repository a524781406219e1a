import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../../static/js/backoff.js";

test("delay is within [0, min(cap, base*2^attempt))", () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(15000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, { random: () => 0 }), 0);
    assert.equal(backoffDelay(attempt, { random: () => 0.999999 }), Math.floor(0.999999 * ceiling));
  }
});

test("the ceiling is capped", () => {
  assert.equal(backoffDelay(30, { random: () => 0.5, cap: 8000 }), 4000);
});

test("full jitter spreads retries", () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(5));
  assert.ok(seen.size > 40, `only ${seen.size} distinct delays`);
});
