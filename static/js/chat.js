// The chat feature of the room page. init() is called once by main.js.

/** @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence, root: HTMLElement}} ctx */
export function init(ctx) {
  return { helloExtras: () => ({}) };
}
