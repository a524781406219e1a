// The participant list as the server reports it. No DOM.

export class Presence {
  constructor() {
    /** @type {Map<string, any>} */
    this.peers = new Map();
    this.selfId = null;
  }

  /** Replace everything with a welcome's snapshot. */
  reset(selfId, participants) {
    this.selfId = selfId;
    this.peers = new Map(participants.map((p) => [p.peer_id, p]));
  }

  upsert(peer) { this.peers.set(peer.peer_id, peer); }

  remove(peerId) { return this.peers.delete(peerId); }

  list() {
    return [...this.peers.values()].sort((a, b) =>
      a.display_name.localeCompare(b.display_name) || a.peer_id.localeCompare(b.peer_id));
  }
}
