// DOM only: renders what the other layers decide.

const STATE_LABELS = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  offline: "You are offline",
  closed: "Disconnected",
};

/** @param {string} state @param {{code?: number, reason?: string}} [detail] */
export function showConnectionState(state, detail = {}) {
  const badge = document.getElementById("connection-state");
  if (!badge) return;
  badge.dataset.state = state;
  let label = STATE_LABELS[state] ?? state;
  if (state === "closed" && detail.reason) label = `Disconnected: ${detail.reason}`;
  badge.textContent = label;
}

/** @param {{peer_id: string, display_name: string, role: string, audio: boolean, video: boolean, hand_at?: string|null}[]} peers @param {string|null} selfPeerId */
export function renderOnline(peers, selfPeerId) {
  const list = document.getElementById("online");
  if (!list) return;
  list.replaceChildren(
    ...peers.map((p) => {
      const li = document.createElement("li");
      li.dataset.peerId = p.peer_id;
      li.textContent = p.display_name + (p.peer_id === selfPeerId ? " (you)" : "");
      const role = document.createElement("span");
      role.className = "role";
      role.textContent = p.role;
      li.append(" ", role);
      return li;
    }),
  );
}

/** A member seen online who joined after the page rendered joins the member list. */
export function ensureMember(peer) {
  const list = document.getElementById("members");
  if (!list || list.querySelector(`li[data-member-id="${Number(peer.member_id)}"]`)) return;
  const li = document.createElement("li");
  li.dataset.memberId = String(peer.member_id);
  li.textContent = peer.display_name;
  const role = document.createElement("span");
  role.className = "role";
  role.textContent = peer.role;
  li.append(" ", role);
  list.append(li);
}
