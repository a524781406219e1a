// Moderation decisions without the DOM (unit-tested with node --test).

/** @typedef {"owner"|"moderator"|"participant"|"guest"} Role */

const RANK = { guest: 0, participant: 1, moderator: 2, owner: 3 };

/** @param {string} role */
export function isModerator(role) {
  return role === "owner" || role === "moderator";
}

/** Whether `actor` may kick/ban/mute `target` (the server decides; this hides buttons). */
export function canActOn(actor, target) {
  return isModerator(actor) && (RANK[actor] ?? -1) > (RANK[target] ?? 99);
}

/**
 * What to tell the user for a frame that ends or blocks their stay, or null.
 * @param {{type: string, code?: string, reason?: string, by?: string|null, until?: string|null, wrong?: boolean}} f
 * @returns {{text: string, tone: "bad"|"info", final: boolean}|null}
 */
export function noticeFor(f) {
  const why = f.reason ? ` Reason: ${f.reason}` : "";
  const by = f.by ? ` by ${f.by}` : "";
  if (f.type === "mod.kicked") return { text: `You were removed from the room${by}.${why}`, tone: "bad", final: true };
  if (f.type === "mod.banned") {
    const until = f.until ? ` until ${new Date(f.until).toLocaleString()}` : "";
    return { text: `You are banned from this room${by}${until}.${why}`, tone: "bad", final: true };
  }
  if (f.type === "session.ended") return { text: "You logged out, so this tab left the room.", tone: "bad", final: true };
  if (f.type === "lobby.waiting") return { text: "Waiting for a moderator to let you in…", tone: "info", final: false };
  if (f.type === "mod.mute_request") return { text: `${f.by ?? "A moderator"} asks you to mute your microphone.`, tone: "info", final: false };
  if (f.type === "mod.muted" || f.type === "mod.mute_all") return { text: `${f.by ?? "A moderator"} muted your microphone.`, tone: "info", final: false };
  if (f.type !== "error") return null;
  switch (f.code) {
    case "banned": {
      const until = f.until ? ` until ${new Date(f.until).toLocaleString()}` : "";
      return { text: `You are banned from this room${until}.${why}`, tone: "bad", final: true };
    }
    case "kicked": return { text: "You were removed from this room; you can come back later.", tone: "bad", final: true };
    case "room_locked": return { text: "The room is locked: nobody new may join right now. Retrying…", tone: "info", final: false };
    case "lobby_rejected": return { text: `A moderator did not let you in.${why}`, tone: "bad", final: true };
    case "password_required": return { text: f.wrong ? "Wrong password." : "This room needs a password.", tone: "info", final: false };
    default: return null;
  }
}

/** One line for the moderators' log from a `mod.action` frame. */
export function describeAction(f) {
  const who = f.target?.display_name ?? "someone";
  const verb = { kick: "removed", ban: "banned", mute: "muted", mute_request: "asked to mute" }[f.action] ?? f.action;
  return `${f.by} ${verb} ${who}${f.reason ? ` (${f.reason})` : ""}`;
}
