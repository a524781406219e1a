import { test } from "node:test";
import assert from "node:assert/strict";
import { canActOn, describeAction, isModerator, noticeFor } from "../../static/js/moderation-logic.js";

test("only moderators and owners moderate, and only people below them", () => {
  assert.equal(isModerator("owner"), true);
  assert.equal(isModerator("participant"), false);
  assert.equal(canActOn("moderator", "participant"), true);
  assert.equal(canActOn("moderator", "guest"), true);
  assert.equal(canActOn("moderator", "moderator"), false);
  assert.equal(canActOn("moderator", "owner"), false);
  assert.equal(canActOn("owner", "moderator"), true);
  assert.equal(canActOn("participant", "guest"), false);
  assert.equal(canActOn("owner", "unknown-role"), false);
});

test("kick and ban notices say who and why, and are final", () => {
  const kicked = noticeFor({ type: "mod.kicked", by: "olivia", reason: "off topic" });
  assert.deepEqual(kicked, { text: "You were removed from the room by olivia. Reason: off topic", tone: "bad", final: true });
  const banned = noticeFor({ type: "error", code: "banned", reason: "" });
  assert.equal(banned.final, true);
  assert.match(banned.text, /banned/);
});

test("entry refusals that may change are not final", () => {
  assert.equal(noticeFor({ type: "error", code: "room_locked" }).final, false);
  assert.equal(noticeFor({ type: "error", code: "password_required", wrong: true }).text, "Wrong password.");
  assert.equal(noticeFor({ type: "lobby.waiting" }).tone, "info");
  assert.equal(noticeFor({ type: "error", code: "rate_limited" }), null);
  assert.equal(noticeFor({ type: "chat.message" }), null);
});

test("actions read as a sentence in the moderators' log", () => {
  assert.equal(describeAction({ action: "ban", by: "olivia", target: { display_name: "marco" }, reason: "spam" }), "olivia banned marco (spam)");
});
