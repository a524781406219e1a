// The call feature of the room page: wires the DOM-free call controller
// (call-controller.js) to its view (call-ui.js) and the page's buttons and keys.
// init() is called once by main.js; other features use what it returns.
import { CallController } from "./call-controller.js";
import { modelLoad, modelPredictor } from "./predict.js";
import { $, createCallView } from "./call-ui.js";
import { REACTIONS } from "./protocol.js";
import { checkConnectivity, describeConnectivity } from "./netcheck.js";

/**
 * @typedef {{helloExtras: () => object, controller: CallController, muteMic: () => void}} CallFeature
 */

/**
 * @param {{socket: import("./socket.js").RoomSocket, presence: import("./presence.js").Presence,
 *          panels: import("./panels.js").Panels}} ctx
 * @returns {CallFeature|null}
 */
export function init({ socket, presence, panels }) {
  if (!document.getElementById("call")) return null;
  /** @type {CallController} */
  let controller;
  const view = createCallView({
    lowerHand: (peerId) => controller.lowerHandOf(peerId),
    tileVisible: (peerId, visible) => controller.setTileVisible(peerId, visible),
  });
  controller = new CallController({ socket, presence, view });

  const click = (/** @type {string} */ id, /** @type {() => any} */ fn) => $(id).addEventListener("click", () => { fn(); });
  click("join-call", () => controller.join());
  click("leave-call", () => controller.leave());
  click("rejoin", () => controller.rejoin());
  click("toggle-mic", () => controller.toggleMic());
  click("pre-mic", () => controller.toggleMic());
  click("toggle-cam", () => controller.toggleCam());
  click("pre-cam", () => controller.toggleCam());
  click("toggle-screen", () => controller.toggleScreen());
  click("toggle-hand", () => controller.toggleHand());
  click("low-bandwidth", () => controller.setLowBandwidth(!controller.state.lowBandwidth));
  click("pre-devices", () => panels.open("more"));
  if (!navigator.mediaDevices?.getDisplayMedia) $("toggle-screen").hidden = true;

  const select = (/** @type {string} */ id) => /** @type {HTMLSelectElement} */ ($(id));
  select("camera-select").addEventListener("change", () => controller.changeDevices({ videoId: select("camera-select").value || undefined }));
  select("mic-select").addEventListener("change", () => controller.changeDevices({ audioId: select("mic-select").value || undefined }));
  select("speaker-select").addEventListener("change", () => view.applySpeaker(select("speaker-select").value));

  // Reactions: a small picker above the button.
  const picker = $("reaction-picker");
  const pickerButton = $("toggle-reactions");
  const showPicker = (/** @type {boolean} */ open) => {
    picker.hidden = !open;
    pickerButton.setAttribute("aria-expanded", String(open));
  };
  picker.replaceChildren(...REACTIONS.map((emoji) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = emoji;
    b.setAttribute("aria-label", `React ${emoji}`);
    b.addEventListener("click", () => { controller.react(emoji); showPicker(false); });
    return b;
  }));
  pickerButton.addEventListener("click", () => showPicker(picker.hidden));
  picker.addEventListener("keydown", (e) => { if (e.key === "Escape") { showPicker(false); pickerButton.focus(); } });

  // The connectivity check (devices panel).
  click("net-check", async () => {
    const list = $("net-check-result");
    const item = (/** @type {string} */ text, /** @type {boolean|null} */ ok) => {
      const li = document.createElement("li");
      li.textContent = text;
      if (ok !== null) li.dataset.ok = String(ok);
      return li;
    };
    list.replaceChildren(item("Checking…", null));
    try {
      const found = await checkConnectivity(controller.state.ice);
      list.replaceChildren(...describeConnectivity(found).map((r) => item(r.text, r.ok)));
    } catch (err) {
      list.replaceChildren(item(`The check failed: ${err?.message ?? err}`, false));
    }
  });

  // Keyboard shortcuts: M microphone, V camera, H hand (C, the chat, is main.js's).
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
    const key = e.key.toLowerCase();
    if (key === "m") controller.toggleMic();
    else if (key === "v") controller.toggleCam();
    else if (key === "h") controller.toggleHand();
    else return;
    e.preventDefault();
  });

  // Video nobody can see is not worth receiving: a hidden page, or a panel over the
  // whole stage (narrow screens; panels.js puts it beside the stage otherwise).
  document.addEventListener("visibilitychange", () => controller.setPageVisible(!document.hidden));
  controller.setPageVisible(!document.hidden);
  const narrow = window.matchMedia("(max-width: 800px)");
  let panelOpen = false;
  const covered = () => controller.setStageCovered(panelOpen && narrow.matches);
  panels.onChange((open) => { panelOpen = Boolean(open); covered(); });
  narrow.addEventListener("change", covered);

  view.showPhase("prejoin");
  controller.start();

  // Exposed for the browser tests and the bench (read only there; features use the return value).
  // @ts-ignore - a global the tests read, not part of Window
  window.huddleCall = {
    stats: () => controller.stats(),
    trace: controller.trace,
    join: () => controller.join(),
    leave: () => controller.leave(),
    state: controller.state,
    // The last call.stats SAMPLE per peer (docs/protocol.md, "Call telemetry").
    lastSamples: () => Object.fromEntries(controller.telemetry.last),
    // Adaptation (docs/adaptation.md): what we send each peer, the steps taken, the modes.
    sendLevels: () => controller.sendLevels(),
    setSendLevel: (/** @type {any} */ level, /** @type {string|undefined} */ peerId, /** @type {any} */ reason) =>
      controller.forceSendLevel(level, peerId, reason),
    events: () => controller.state.events.slice(),
    lastViews: () => controller.lastViews(),
    setLowBandwidth: (/** @type {boolean} */ on) => controller.setLowBandwidth(Boolean(on)),
    setAdaptMode: (/** @type {any} */ mode) => {
      controller.setAdaptMode(mode);
      if (mode === "predictive") usePrediction(controller);
    },
    setPredictor: (/** @type {any} */ fn, /** @type {any} */ opts) => controller.setPredictor(fn, opts),
  };
  return {
    helloExtras: () => controller.helloExtras(),
    controller,
    muteMic: () => controller.setMicMuted(true),
  };
}

/**
 * Predictive mode: load the freeze model (static/js/quality-model.json, beside
 * predict.js) once and give it to the ladder with its alarm threshold
 * (docs/adaptation.md, "Prediction"). Without a model the ladder stays reactive.
 * @param {CallController} controller
 */
async function usePrediction(controller) {
  if (controller.predictor) return;
  try {
    const model = await modelLoad();
    if (!controller.predictor) controller.setPredictor(modelPredictor(model), { threshold: model.threshold });
  } catch (err) {
    console.warn("prediction", err);
  }
}

/** Whether a key press is typing into a field (shortcuts must not fire). @param {EventTarget|null} target */
export function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}
