// A scripted stand-in for the browser's WebSocket, shared by the socket tests
// (pure-logic unit tests; the real socket is covered by the browser tests).

export class FakeWS {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWS.instances.push(this);
    queueMicrotask(() => { this.readyState = 1; this.onopen?.(); });
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close() { this.readyState = 3; }
  serverSends(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
  serverCloses(code) { this.readyState = 3; this.onclose?.({ code, reason: "" }); }
}

export const tick = () => new Promise((r) => setTimeout(r, 5));
