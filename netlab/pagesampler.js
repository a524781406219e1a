// Injected by the network lab into each headless peer's page (page.evaluate):
// reads getStats of every peer connection of window.huddleCall every 500 ms,
// keeps fine "ticks" (frames decoded, audio samples and concealment, what we
// send) for freeze and recovery timing, and every 2 s one SAMPLE per remote peer
// in the telemetry format of the issue-14 contract (the lab's own copy of what
// the product's telemetry sends, so a run has samples even without it).
// Python drains window.__lab with drain().
(() => {
  if (window.__lab) return;
  const lab = { samples: [], ticks: [], events: [], prev: new Map(), n: 0 };
  window.__lab = lab;

  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

  function extract(report) {
    const c = {
      vFrames: 0, vDropped: 0, vFreezes: 0, vFreezeS: 0, vFps: null, vJitter: null, vHeight: null,
      aSamples: 0, aConcealed: 0, aJitter: null, lost: 0, recv: 0, bytesIn: 0, bytesOut: 0,
      outHeight: null, outFps: null, qlr: null, rtt: null, bwOut: null, relay: false,
      remoteRtt: null,
    };
    let pair = null;
    report.forEach((s) => {
      if (s.type === "inbound-rtp") {
        c.lost += s.packetsLost ?? 0;
        c.recv += s.packetsReceived ?? 0;
        c.bytesIn += s.bytesReceived ?? 0;
        if (s.kind === "video") {
          c.vFrames += s.framesDecoded ?? 0;
          c.vDropped += s.framesDropped ?? 0;
          c.vFreezes += s.freezeCount ?? 0;
          c.vFreezeS += s.totalFreezesDuration ?? 0;
          c.vFps = num(s.framesPerSecond) ?? c.vFps;
          c.vJitter = num(s.jitter) ?? c.vJitter;
          c.vHeight = num(s.frameHeight) ?? c.vHeight;
        } else if (s.kind === "audio") {
          c.aSamples += s.totalSamplesReceived ?? 0;
          c.aConcealed += s.concealedSamples ?? 0;
          c.aJitter = num(s.jitter) ?? c.aJitter;
        }
      }
      if (s.type === "outbound-rtp") {
        c.bytesOut += s.bytesSent ?? 0;
        if (s.kind === "video") {
          c.outHeight = num(s.frameHeight) ?? c.outHeight;
          c.outFps = num(s.framesPerSecond) ?? c.outFps;
          c.qlr = s.qualityLimitationReason ?? c.qlr;
        }
      }
      if (s.type === "remote-inbound-rtp") {
        if (typeof s.roundTripTime === "number") c.remoteRtt = s.roundTripTime;
      }
      if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (!pair) report.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
    if (pair) {
      c.rtt = num(pair.currentRoundTripTime);
      c.bwOut = num(pair.availableOutgoingBitrate);
      c.relay = report.get(pair.localCandidateId)?.candidateType === "relay";
    }
    return c;
  }

  function productLossOut(peer) {
    try { return num(window.huddleCall.lastSamples()[peer]?.loss_out); } catch { return null; }
  }

  function sample(peer, prev, cur, level) {
    const dt = Math.max(1, cur.t - prev.t);
    const d = (k) => Math.max(0, cur[k] - prev[k]);
    const lost = d("lost"), recv = d("recv");
    const aTotal = d("aSamples");
    const rtt = cur.rtt ?? cur.remoteRtt;
    return {
      peer, t: cur.t,
      rtt: rtt === null ? null : rtt * 1000,
      loss_in: lost + recv > 0 ? lost / (lost + recv) : null,
      // The product's own measure (stats-sample.js sentLoss, its last telemetry sample),
      // as the stored call_stats samples carry; not a report's fractionLost,
      // which read 0.2-0.5 on a 5 % path.
      loss_out: productLossOut(peer),
      jitter: cur.vJitter !== null ? cur.vJitter * 1000 : (cur.aJitter !== null ? cur.aJitter * 1000 : null),
      bw_out: cur.bwOut === null ? null : cur.bwOut / 1000,
      send_kbps: (d("bytesOut") * 8) / dt, recv_kbps: (d("bytesIn") * 8) / dt,
      qlr: cur.qlr,
      fps_in: (d("vFrames") * 1000) / dt, decoded: d("vFrames"), dropped: d("vDropped"),
      freezes: d("vFreezes"), freeze_ms: d("vFreezeS") * 1000,
      conceal: aTotal > 0 ? d("aConcealed") / aTotal : null,
      relay: cur.relay, level, pred: null, events: [],
      // Lab extras (not in the contract's SAMPLE): the resolutions either way.
      out_height: cur.outHeight, in_height: cur.vHeight,
    };
  }

  // What this page's tile of that peer says about its video (e.g. "bob: audio only
  // (poor connection)"), or null when it says nothing.
  function tileNotice(peerId) {
    const tile = document.querySelector(`#video-grid [data-peer-id="${CSS.escape(peerId)}"]`);
    const note = tile?.querySelector(".tile-notice");
    return note && !note.hidden && note.textContent ? note.textContent : null;
  }

  async function tick() {
    const call = window.huddleCall;
    if (!call?.state?.peers) return;
    const every2s = lab.n % 4 === 0;
    lab.n += 1;
    let levels = {};
    try { levels = call.sendLevels?.() ?? {}; } catch { levels = {}; }
    for (const [peerId, peer] of call.state.peers) {
      if (!peer?.pc) continue;
      let report;
      try { report = await peer.pc.getStats(); } catch { continue; }
      const cur = { ...extract(report), t: Date.now() };
      lab.ticks.push({
        peer: peerId, t: cur.t, frames: cur.vFrames, a_samples: cur.aSamples, a_concealed: cur.aConcealed,
        bytes_in: cur.bytesIn, bytes_out: cur.bytesOut, out_height: cur.outHeight, in_height: cur.vHeight,
        level: levels[peerId] ?? null, state: peer.pc.connectionState, notice: tileNotice(peerId),
      });
      if (every2s) {
        const prev = lab.prev.get(peerId);
        if (prev) lab.samples.push(sample(peerId, prev, cur, levels[peerId] ?? null));
        lab.prev.set(peerId, cur);
      }
    }
  }
  lab.timer = setInterval(() => { tick().catch(() => {}); }, 500);
  lab.drain = () => {
    const out = { samples: lab.samples.splice(0), ticks: lab.ticks.splice(0) };
    try { out.events = window.huddleCall.events?.() ?? []; } catch { out.events = []; }
    return out;
  };
})();
