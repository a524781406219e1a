// DOM only for the call: tiles, controls, status messages. Decides nothing.

const LINK_LABELS = {
  new: "Connecting…", connecting: "Connecting…", connected: "", disconnected: "Connection interrupted…",
  failed: "Connection failed, retrying…", closed: "Left",
};
const QUALITY_LABELS = { good: "Good link", fair: "Fair link", poor: "Poor link", unknown: "" };

export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Switch between the pre-join preview, the call and the "you left" panel. */
export function showPhase(phase) {
  $("call").dataset.phase = phase;
  $("prejoin").hidden = phase !== "prejoin";
  $("in-call").hidden = phase !== "in-call";
  $("left").hidden = phase !== "left";
}

let statusTimer = null;
/** @param {string} text @param {{tone?: "info"|"warn"|"bad"|"ok", sticky?: boolean}} [opts] */
export function showStatus(text, { tone = "info", sticky = false } = {}) {
  const box = $("call-status");
  clearTimeout(statusTimer);
  if (!text) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = text;
  box.dataset.tone = tone;
  box.hidden = false;
  if (!sticky) statusTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

export function showCallState(label, state) {
  const badge = $("call-state");
  badge.textContent = label;
  badge.dataset.state = state;
}

export function showMediaError(text) {
  const p = $("media-error");
  p.textContent = text ?? "";
  p.hidden = !text;
}

/** @param {HTMLSelectElement} select @param {MediaDeviceInfo[]} devices @param {string} [current] */
export function fillDevices(select, devices, current) {
  select.replaceChildren(...devices.map((d, i) => {
    const opt = document.createElement("option");
    opt.value = d.deviceId;
    opt.textContent = d.label || `${d.kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`;
    opt.selected = d.deviceId === current;
    return opt;
  }));
  select.disabled = devices.length === 0;
}

export function setPreview(stream) {
  const video = /** @type {HTMLVideoElement} */ ($("preview"));
  video.srcObject = stream;
  $("preview-empty").hidden = Boolean(stream?.getVideoTracks().length);
}

/** @param {string} peerId @param {{name: string, self?: boolean}} info @returns {HTMLElement} */
export function ensureTile(peerId, { name, self = false }) {
  const grid = $("video-grid");
  let tile = /** @type {HTMLElement|null} */ (grid.querySelector(`[data-peer-id="${CSS.escape(peerId)}"]`));
  if (!tile) {
    tile = document.createElement("figure");
    tile.className = "tile";
    tile.dataset.peerId = peerId;
    if (self) tile.dataset.self = "1";
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    if (self) { video.muted = true; video.className = "mirror"; }
    const caption = document.createElement("figcaption");
    const label = document.createElement("span");
    label.className = "tile-name";
    const icons = document.createElement("span");
    icons.className = "tile-icons";
    const state = document.createElement("span");
    state.className = "tile-state";
    const quality = document.createElement("span");
    quality.className = "tile-quality";
    caption.append(label, icons, quality, state);
    tile.append(video, caption);
    if (self) grid.prepend(tile); else grid.append(tile);
    grid.dataset.count = String(grid.children.length);
  }
  tile.querySelector(".tile-name").textContent = self ? `${name} (you)` : name;
  return tile;
}

export function setTileStream(peerId, stream) {
  const video = tileOf(peerId)?.querySelector("video");
  if (video && video.srcObject !== stream) video.srcObject = stream;
}

export function setTileLink(peerId, state) {
  const tile = tileOf(peerId);
  if (!tile) return;
  tile.dataset.link = state;
  tile.querySelector(".tile-state").textContent = LINK_LABELS[state] ?? state;
}

export function setTileQuality(peerId, quality) {
  const tile = tileOf(peerId);
  if (!tile) return;
  tile.dataset.quality = quality;
  tile.querySelector(".tile-quality").textContent = QUALITY_LABELS[quality] ?? "";
}

/** @param {{audio: boolean, video: boolean, screen: boolean}} media */
export function setTileMedia(peerId, media) {
  const tile = tileOf(peerId);
  if (!tile) return;
  tile.dataset.audio = String(media.audio);
  tile.dataset.video = String(media.video);
  const words = [];
  if (!media.audio) words.push("muted");
  if (!media.video && !media.screen) words.push("camera off");
  if (media.screen) words.push("sharing screen");
  tile.querySelector(".tile-icons").textContent = words.join(" · ");
}

export function removeTile(peerId) {
  const tile = tileOf(peerId);
  if (!tile) return;
  const video = tile.querySelector("video");
  if (video) video.srcObject = null;
  tile.remove();
  const grid = $("video-grid");
  grid.dataset.count = String(grid.children.length);
}

export function clearTiles() {
  for (const tile of [...$("video-grid").children]) removeTile(/** @type {HTMLElement} */ (tile).dataset.peerId);
}

export function setToggle(id, pressed, labels) {
  const button = $(id);
  button.setAttribute("aria-pressed", String(pressed));
  button.textContent = pressed ? labels[1] : labels[0];
}

/** @param {string} peerId @returns {HTMLElement|null} */
function tileOf(peerId) {
  return document.querySelector(`#video-grid [data-peer-id="${CSS.escape(peerId)}"]`);
}
