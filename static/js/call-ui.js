// The call's DOM: the view the call controller talks to (tiles, grid layout,
// pin/spotlight, the active speaker, toggles, statuses, devices, hands and
// reactions, the end of a call). Decides nothing about the call itself.

const LINK_LABELS = {
  new: "Connecting…", connecting: "Connecting…", connected: "", disconnected: "Connection interrupted…",
  failed: "Connection failed, retrying…", closed: "Left",
};
const QUALITY_LABELS = { good: "Good link", fair: "Fair link", poor: "Poor link", unknown: "" };
const REACTION_SHOW_MS = 3000;
// Why a sender stepped down, as the receiver reads it (media-control reasons).
const STEP_WHY = {
  loss: "poor connection", rtt: "poor connection", bandwidth: "poor connection", predicted: "poor connection",
  cpu: "their device is busy", manual: "paused", recovered: "",
};

/**
 * The notice on a remote tile about the video it gets, and whether the picture is
 * replaced by the person's initials (rather than a frozen frame).
 * @param {string} name @param {import("./call-controller.js").RemoteVideo} r
 * @returns {{text: string, tone: "quiet"|"warn"|"", hideVideo: boolean, state: string}}
 */
export function remoteVideoNotice(name, r) {
  if (r.paused === "low-bandwidth") return { text: `${name}: video off (low-bandwidth mode)`, tone: "quiet", hideVideo: true, state: "paused" };
  if (r.paused) return { text: `${name}: video paused (not on screen)`, tone: "quiet", hideVideo: true, state: "paused" };
  if (r.level === "audio") {
    const why = STEP_WHY[/** @type {keyof typeof STEP_WHY} */ (r.reason ?? "")] || "poor connection";
    return { text: `${name}: audio only (${why})`, tone: "warn", hideVideo: true, state: "audio" };
  }
  if (r.frozen) return { text: `${name}: video interrupted (connection problem)`, tone: "warn", hideVideo: true, state: "frozen" };
  if (r.level === "reduced" || r.level === "low") return { text: "lower quality", tone: "quiet", hideVideo: false, state: r.level };
  return { text: "", tone: "", hideVideo: false, state: r.level ?? "full" };
}

export const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Up to two initials from a display name ("Ada Lovelace" -> "AL"). @param {string} name */
export function initials(name) {
  const words = String(name).trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words.slice(0, 1);
  return letters.map((w) => [...w][0] ?? "").join("").toUpperCase() || "?";
}

/**
 * Columns and rows for `count` tiles of ratio 16:9 in a `width` x `height` stage with
 * `gap` pixels between tiles, chosen so that each tile is as large as possible, and the
 * tile's width in whole pixels (its height is 9/16 of it): a tile keeps a picture's
 * shape, so a face is not cropped to a strip when the stage is much wider than tall.
 * @param {number} count @param {number} width @param {number} height @param {number} [gap]
 * @returns {{cols: number, rows: number, tileWidth: number}}
 */
export function gridShape(count, width, height, gap = 0) {
  let best = { cols: 1, rows: Math.max(1, count), tileWidth: 0 };
  for (let cols = 1; cols <= Math.max(1, count); cols++) {
    const rows = Math.ceil(count / cols);
    const w = (width - gap * (cols - 1)) / cols;
    const h = (height - gap * (rows - 1)) / rows;
    const tileWidth = Math.max(0, Math.floor(Math.min(w, (h * 16) / 9)));
    if (tileWidth > best.tileWidth) best = { cols, rows, tileWidth };
  }
  return best;
}

/**
 * @param {{lowerHand: (peerId: string) => void, tileVisible?: (peerId: string, visible: boolean) => void}} actions
 *   tileVisible: a remote tile scrolled into or out of view (IntersectionObserver)
 * @returns {import("./call-controller.js").CallView & {applySpeaker: (id: string) => void}}
 */
export function createCallView(actions) {
  let statusTimer = 0;
  /** @type {string|null} the tile the user pinned */
  let pinned = null;
  let sinkId = "";
  const grid = $("video-grid");
  const tileOf = (/** @type {string} */ peerId) =>
    /** @type {HTMLElement|null} */ (grid.querySelector(`[data-peer-id="${CSS.escape(peerId)}"]`));

  function layout() {
    const tiles = /** @type {HTMLElement[]} */ ([...grid.children]);
    grid.dataset.count = String(tiles.length);
    const shared = tiles.find((t) => t.dataset.screen === "true" && t.dataset.self !== "1");
    const focus = (pinned && tileOf(pinned)) || shared || null;
    for (const t of tiles) t.dataset.spotlight = String(t === focus);
    if (focus && tiles.length > 1) {
      grid.dataset.layout = "spotlight";
      grid.style.setProperty("--strip", String(tiles.length - 1));
      return;
    }
    grid.dataset.layout = "grid";
    const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
    const { cols, rows, tileWidth } = gridShape(tiles.length || 1, grid.clientWidth || 1280, grid.clientHeight || 720, gap);
    grid.style.setProperty("--cols", String(cols));
    grid.style.setProperty("--rows", String(rows));
    grid.style.setProperty("--tile-w", `${tileWidth}px`);
    grid.style.setProperty("--tile-h", `${Math.floor((tileWidth * 9) / 16)}px`);
  }
  new ResizeObserver(() => layout()).observe(grid);
  // Remote tiles out of view: their video is not needed (the controller asks the peer to pause it).
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const peerId = /** @type {HTMLElement} */ (e.target).dataset.peerId;
      if (peerId) actions.tileVisible?.(peerId, e.isIntersecting);
    }
  });

  /** @param {string} peerId */
  function togglePin(peerId) {
    pinned = pinned === peerId ? null : peerId;
    for (const t of /** @type {HTMLElement[]} */ ([...grid.children])) {
      const on = t.dataset.peerId === pinned;
      t.dataset.pinned = String(on);
      const b = t.querySelector(".tile-pin");
      if (b) b.setAttribute("aria-pressed", String(on));
    }
    layout();
  }

  /** @param {HTMLButtonElement} button @param {boolean} pressed */
  const press = (button, pressed) => button?.setAttribute("aria-pressed", String(pressed));

  /** @type {import("./call-controller.js").CallView & {applySpeaker: (id: string) => void}} */
  const view = {
    showPhase(phase) {
      $("call").dataset.phase = phase;
      $("prejoin").hidden = phase !== "prejoin";
      $("in-call").hidden = phase !== "in-call";
      $("left").hidden = phase !== "ended";
      $("room").dataset.inCall = String(phase === "in-call");
      if (phase === "in-call") layout();
    },

    showStatus(text, { tone = "info", sticky = false } = {}) {
      const box = $("call-status");
      clearTimeout(statusTimer);
      if (!text) { box.hidden = true; box.textContent = ""; return; }
      box.textContent = text;
      box.dataset.tone = tone;
      box.hidden = false;
      if (!sticky) statusTimer = window.setTimeout(() => { box.hidden = true; }, 6000);
    },

    showCallState(label, state) {
      const badge = $("call-state");
      badge.textContent = label;
      badge.dataset.state = state;
    },

    showMediaError(text) {
      const p = $("media-error");
      p.textContent = text ?? "";
      p.hidden = !text;
    },

    showDevices({ cameras, mics, speakers }, current) {
      fillDevices(/** @type {HTMLSelectElement} */ ($("camera-select")), cameras, current.videoId);
      fillDevices(/** @type {HTMLSelectElement} */ ($("mic-select")), mics, current.audioId);
      const speakerSelect = /** @type {HTMLSelectElement} */ ($("speaker-select"));
      fillDevices(speakerSelect, speakers, sinkId || "default");
      // Choosing the output needs setSinkId (not in every browser).
      speakerSelect.disabled = speakers.length === 0 || !("setSinkId" in HTMLMediaElement.prototype);
    },

    setPreview(stream) {
      const video = /** @type {HTMLVideoElement} */ ($("preview"));
      video.srcObject = stream;
      $("preview-empty").hidden = Boolean(stream?.getVideoTracks().some((t) => t.enabled && t.readyState === "live"));
      meter.attach(stream);
    },

    setJoinable(joinable, why) {
      /** @type {HTMLButtonElement} */ ($("join-call")).disabled = !joinable;
      $("join-why").textContent = why;
    },

    showRoomSummary(text) { $("call-count").textContent = text; },

    ensureTile(peerId, { name, self = false }) {
      let tile = tileOf(peerId);
      if (!tile) {
        tile = document.createElement("figure");
        tile.className = "tile";
        tile.dataset.peerId = peerId;
        tile.dataset.screen = "false";
        tile.dataset.video = "true";
        if (self) tile.dataset.self = "1";
        const video = document.createElement("video");
        video.autoplay = true;
        video.playsInline = true;
        if (self) { video.muted = true; video.className = "mirror"; }
        else if (sinkId) setSink(video, sinkId);
        const avatar = document.createElement("div");
        avatar.className = "tile-initials";
        avatar.append(document.createElement("span"));
        const caption = document.createElement("figcaption");
        const hand = document.createElement("span");
        hand.className = "tile-hand";
        hand.hidden = true;
        hand.textContent = "✋";
        const label = document.createElement("span");
        label.className = "tile-name";
        const icons = document.createElement("span");
        icons.className = "tile-icons";
        const quality = document.createElement("span");
        quality.className = "tile-quality";
        const state = document.createElement("span");
        state.className = "tile-state";
        caption.append(hand, label, icons, quality, state);
        const notice = document.createElement("p");
        notice.className = "tile-notice";
        notice.hidden = true;
        const pin = document.createElement("button");
        pin.type = "button";
        pin.className = "tile-pin";
        pin.setAttribute("aria-pressed", "false");
        pin.addEventListener("click", () => togglePin(peerId));
        tile.append(video, avatar, notice, caption, pin);
        if (self) grid.prepend(tile); else { grid.append(tile); seen.observe(tile); }
      }
      tile.dataset.name = name;
      tile.querySelector(".tile-name").textContent = self ? `${name} (you)` : name;
      tile.querySelector(".tile-initials span").textContent = initials(name);
      tile.querySelector(".tile-pin").textContent = "Pin";
      tile.querySelector(".tile-pin").setAttribute("aria-label", self ? "Pin yourself" : `Pin ${name}`);
      layout();
      return tile;
    },

    setTileStream(peerId, stream, { screen = false } = {}) {
      const tile = tileOf(peerId);
      const video = tile?.querySelector("video");
      if (!tile || !video) return;
      if (video.srcObject !== stream) video.srcObject = stream;
      if (tile.dataset.self === "1") tile.dataset.screen = String(screen);
    },

    setTileLink(peerId, state) {
      const tile = tileOf(peerId);
      if (!tile) return;
      tile.dataset.link = state;
      tile.querySelector(".tile-state").textContent = LINK_LABELS[state] ?? state;
    },

    setTileQuality(peerId, quality) {
      const tile = tileOf(peerId);
      if (!tile) return;
      tile.dataset.quality = quality;
      tile.querySelector(".tile-quality").textContent = QUALITY_LABELS[quality] ?? "";
    },

    setTileRemoteVideo(peerId, remote) {
      const tile = tileOf(peerId);
      if (!tile) return;
      const n = remoteVideoNotice(tile.dataset.name ?? "", remote);
      tile.dataset.remoteVideo = n.state;
      tile.dataset.videoHidden = String(n.hideVideo);
      const p = /** @type {HTMLElement} */ (tile.querySelector(".tile-notice"));
      p.textContent = n.text;
      p.dataset.tone = n.tone;
      p.hidden = !n.text;
    },

    showLowBandwidth(on) {
      press(/** @type {HTMLButtonElement} */ ($("low-bandwidth")), on);
    },

    setTileMedia(peerId, media) {
      const tile = tileOf(peerId);
      if (!tile) return;
      tile.dataset.audio = String(media.audio);
      tile.dataset.video = String(media.video);
      const wasScreen = tile.dataset.screen === "true";
      tile.dataset.screen = String(Boolean(media.screen));
      const words = [];
      if (!media.audio) words.push("muted");
      if (!media.video && !media.screen) words.push("camera off");
      if (media.screen) words.push("sharing screen");
      tile.querySelector(".tile-icons").textContent = words.join(" · ");
      if (wasScreen !== Boolean(media.screen)) layout();
    },

    removeTile(peerId) {
      const tile = tileOf(peerId);
      if (!tile) return;
      const video = tile.querySelector("video");
      if (video) video.srcObject = null;
      seen.unobserve(tile);
      tile.remove();
      if (pinned === peerId) pinned = null;
      layout();
    },

    clearTiles() {
      for (const tile of /** @type {HTMLElement[]} */ ([...grid.children])) view.removeTile(tile.dataset.peerId);
    },

    showToggles({ mic, cam, screen, hand }) {
      for (const id of ["toggle-mic", "pre-mic"]) press(/** @type {HTMLButtonElement} */ ($(id)), !mic);
      for (const id of ["toggle-cam", "pre-cam"]) press(/** @type {HTMLButtonElement} */ ($(id)), !cam);
      press(/** @type {HTMLButtonElement} */ ($("toggle-screen")), screen);
      press(/** @type {HTMLButtonElement} */ ($("toggle-hand")), hand);
      $("preview-empty").hidden = cam;
    },

    showEnded(text, { rejoin }) {
      $("end-text").textContent = text;
      $("rejoin").hidden = !rejoin;
    },

    showHands(queue, selfId, canLower = false) {
      $("hands-box").hidden = queue.length === 0;
      $("hand-queue").replaceChildren(...queue.map((h) => {
        const li = document.createElement("li");
        li.dataset.peerId = h.peer_id;
        const name = document.createElement("span");
        name.textContent = h.peer_id === selfId ? `${h.name} (you)` : h.name;
        li.append("✋ ", name);
        if (canLower && h.peer_id !== selfId) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "secondary small hand-lower";
          b.textContent = "Lower hand";
          b.setAttribute("aria-label", `Lower ${h.name}'s hand`);
          b.addEventListener("click", () => actions.lowerHand(h.peer_id));
          li.append(b);
        }
        return li;
      }));
      const raised = new Set(queue.map((h) => h.peer_id));
      for (const tile of /** @type {HTMLElement[]} */ ([...grid.children])) {
        /** @type {HTMLElement} */ (tile.querySelector(".tile-hand")).hidden = !raised.has(tile.dataset.peerId);
      }
      const badge = $("people-badge");
      badge.textContent = String(queue.length);
      badge.hidden = queue.length === 0;
      badge.setAttribute("aria-label", `${queue.length} raised`);
    },

    showReaction({ peer_id: peerId, name, emoji }) {
      const layer = $("reaction-layer");
      const item = document.createElement("div");
      item.className = "reaction-float";
      item.dataset.peerId = peerId;
      item.style.left = `${10 + Math.random() * 70}%`;
      const e = document.createElement("span");
      e.textContent = emoji;
      const who = document.createElement("small");
      who.textContent = name;
      item.append(e, who);
      item.setAttribute("aria-label", `${name} reacted ${emoji}`);
      layer.append(item);
      setTimeout(() => item.remove(), REACTION_SHOW_MS);
    },

    showSpeaker(peerId) {
      for (const tile of /** @type {HTMLElement[]} */ ([...grid.children])) {
        tile.dataset.speaking = String(tile.dataset.peerId === peerId);
      }
    },

    /** The speaker (audio output) for every remote tile. @param {string} id */
    applySpeaker(id) {
      sinkId = id;
      for (const video of grid.querySelectorAll("[data-peer-id]:not([data-self]) video")) setSink(/** @type {HTMLVideoElement} */ (video), id);
    },
  };
  return view;
}

/** @param {HTMLVideoElement} video @param {string} id */
function setSink(video, id) {
  // @ts-ignore - setSinkId is not in every lib.dom
  video.setSinkId?.(id).catch((/** @type {Error} */ err) => console.warn("setSinkId", err));
}

/** @param {HTMLSelectElement} select @param {MediaDeviceInfo[]} devices @param {string} [current] */
export function fillDevices(select, devices, current) {
  const words = { videoinput: "Camera", audioinput: "Microphone", audiooutput: "Speaker" };
  select.replaceChildren(...devices.map((d, i) => {
    const opt = document.createElement("option");
    opt.value = d.deviceId;
    opt.textContent = d.label || `${words[d.kind] ?? "Device"} ${i + 1}`;
    opt.selected = d.deviceId === current;
    return opt;
  }));
  select.disabled = devices.length === 0;
}

/** The microphone level meter of the devices panel (Web Audio; idle without a microphone). */
const meter = {
  /** @type {AudioContext|null} */ ctx: null,
  /** @type {MediaStreamAudioSourceNode|null} */ source: null,
  /** @type {AnalyserNode|null} */ analyser: null,
  timer: 0,
  /** @param {MediaStream|null} stream */
  attach(stream) {
    this.source?.disconnect();
    this.source = null;
    clearInterval(this.timer);
    const el = /** @type {HTMLMeterElement|null} */ (document.getElementById("mic-meter"));
    if (!el) return;
    el.value = 0;
    const track = stream?.getAudioTracks()[0];
    if (!track || typeof AudioContext === "undefined") return;
    try {
      this.ctx ??= new AudioContext();
      this.analyser ??= this.ctx.createAnalyser();
      this.analyser.fftSize = 512;
      this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
      this.source.connect(this.analyser);
    } catch (err) {
      console.warn("mic meter", err);
      return;
    }
    const data = new Float32Array(this.analyser.fftSize);
    this.timer = window.setInterval(() => {
      if (!this.analyser || el.offsetParent === null) return; // not on screen: skip the work
      if (this.ctx?.state === "suspended") this.ctx.resume().catch(() => {});
      this.analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const v of data) sum += v * v;
      el.value = Math.min(1, Math.sqrt(sum / data.length) * 4);
    }, 120);
  },
};
