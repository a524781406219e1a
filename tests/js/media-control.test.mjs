// The media-control channel's messages: built in one place, checked on arrival.
import { test } from "node:test";
import assert from "node:assert/strict";
import { levelMessage, wantVideoMessage, parseControl, CONTROL_MAX_CHARS } from "../../static/js/media-control.js";

test("messages have the documented shape", () => {
  assert.equal(levelMessage("audio", "loss"), '{"level":"audio","reason":"loss"}');
  assert.equal(wantVideoMessage(false), '{"want_video":false}');
  assert.deepEqual(parseControl(levelMessage("low", "cpu")), { level: "low", reason: "cpu" });
  assert.deepEqual(parseControl(wantVideoMessage(true)), { want_video: true });
  assert.deepEqual(parseControl('{"want_video":false,"extra":1}'), { want_video: false }, "unknown keys are ignored");
});

test("anything malformed is dropped", () => {
  for (const bad of [null, 42, "", "nope", "[]", "null", '{"level":"audio-only","reason":"loss"}', '{"level":"audio"}',
    '{"level":"audio","reason":"boredom"}', '{"want_video":"no"}', "{}", `{"want_video":true,"pad":"${"x".repeat(CONTROL_MAX_CHARS)}"}`]) {
    assert.equal(parseControl(bad), null, String(bad));
  }
});
