// The room's side panels (chat, people, more): one open at a time, beside the
// stage on a wide screen and over it on a phone. DOM only.

const NAMES = /** @type {const} */ (["chat", "people", "more"]);

/**
 * @typedef {"chat"|"people"|"more"} PanelName
 * @typedef {{open: (name: PanelName) => void, close: () => void, toggle: (name: PanelName) => void,
 *            isOpen: (name: PanelName) => boolean, onChange: (fn: (open: PanelName|null) => void) => void}} Panels
 */

/** @param {HTMLElement} root @returns {Panels} */
export function createPanels(root) {
  /** @type {PanelName|null} */
  let current = null;
  /** @type {((open: PanelName|null) => void)[]} */
  const listeners = [];
  const panel = (/** @type {PanelName} */ name) => document.getElementById(`panel-${name}`);
  const button = (/** @type {PanelName} */ name) => document.getElementById(`toggle-${name}`);

  /** @param {PanelName|null} name */
  function show(name) {
    const previous = current;
    current = name;
    root.dataset.panel = name ?? "";
    for (const n of NAMES) {
      const p = panel(n);
      if (p) p.hidden = n !== name;
      button(n)?.setAttribute("aria-pressed", String(n === name));
    }
    if (name && window.matchMedia("(max-width: 800px)").matches) {
      // Over the stage on a phone: move focus into it, and back to its button on close.
      /** @type {HTMLElement|null} */ (panel(name)?.querySelector("[data-close-panel]"))?.focus();
    } else if (!name && previous) {
      button(previous)?.focus();
    }
    for (const fn of listeners) fn(name);
  }

  for (const n of NAMES) button(n)?.addEventListener("click", () => api.toggle(n));
  for (const b of root.querySelectorAll("[data-close-panel]")) b.addEventListener("click", () => show(null));
  root.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && current && e.target instanceof Node && panel(current)?.contains(e.target)) show(null);
  });

  const api = {
    open: (/** @type {PanelName} */ name) => show(name),
    close: () => show(null),
    toggle: (/** @type {PanelName} */ name) => show(current === name ? null : name),
    isOpen: (/** @type {PanelName} */ name) => current === name,
    onChange: (/** @type {(open: PanelName|null) => void} */ fn) => { listeners.push(fn); },
  };
  return api;
}
