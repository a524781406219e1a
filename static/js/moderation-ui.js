// The moderation DOM: the notice line, the people rows with their actions (each
// button names its person), the lobby list, the knock toast with its sound and
// the title badge. moderation.js decides; this renders.

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {{text: string, tone: string}|null} n */
export function showNotice(n) {
  const box = $("mod-notice");
  if (!n) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = n.text;
  box.dataset.tone = n.tone;
  box.hidden = false;
}

/**
 * @param {string} label visible text @param {string} name the person @param {string} cls
 * @param {() => void} onClick @param {{secondary?: boolean}} [opts]
 */
export function personButton(label, name, cls, onClick, { secondary = true } = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `${secondary ? "secondary " : ""}${cls}`;
  b.textContent = label;
  b.setAttribute("aria-label", `${label} ${name}`);
  b.addEventListener("click", onClick);
  return b;
}

/**
 * @param {{member_id: number, display_name: string, role: string, audio: boolean}[]} people
 * @param {(p: any) => HTMLButtonElement[]} actionsFor
 */
export function renderPeople(people, actionsFor) {
  $("mod-people").replaceChildren(...people.map((p) => {
    const li = document.createElement("li");
    li.className = "mod-person";
    li.dataset.memberId = String(p.member_id);
    const name = document.createElement("span");
    name.className = "mod-name";
    name.textContent = `${p.display_name} (${p.role})${p.audio ? "" : " · muted"}`;
    li.append(name, ...actionsFor(p));
    return li;
  }));
}

/**
 * @param {{knock_id: string, display_name: string}[]} knocks
 * @param {{admit: (knockId: string) => void, reject: (knockId: string) => void}} act
 */
export function renderKnocks(knocks, act) {
  $("mod-lobby-box").hidden = knocks.length === 0;
  $("mod-lobby-list").replaceChildren(...knocks.map((k) => {
    const li = document.createElement("li");
    li.className = "mod-person mod-knock";
    li.dataset.knockId = k.knock_id;
    const name = document.createElement("span");
    name.className = "mod-name";
    name.textContent = k.display_name;
    li.append(name,
      personButton("Admit", k.display_name, "mod-admit", () => act.admit(k.knock_id), { secondary: false }),
      personButton("Deny", k.display_name, "mod-reject", () => act.reject(k.knock_id)));
    return li;
  }));
  renderKnockToasts(knocks, act);
  showTitleBadge(knocks.length);
}

/** One toast per waiting person, with Admit and Deny; gone once decided. */
function renderKnockToasts(knocks, act) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const waiting = new Set(knocks.map((k) => k.knock_id));
  for (const t of /** @type {HTMLElement[]} */ ([...box.querySelectorAll(".toast[data-knock-id]")])) {
    if (!waiting.has(t.dataset.knockId)) t.remove();
  }
  for (const k of knocks) {
    if (box.querySelector(`.toast[data-knock-id="${CSS.escape(k.knock_id)}"]`)) continue;
    const toast = document.createElement("div");
    toast.className = "toast knock-toast";
    toast.dataset.knockId = k.knock_id;
    toast.setAttribute("role", "alert");
    const p = document.createElement("p");
    p.textContent = `${k.display_name} is waiting to join.`;
    toast.append(p,
      personButton("Admit", k.display_name, "small toast-admit", () => act.admit(k.knock_id), { secondary: false }),
      personButton("Deny", k.display_name, "small toast-reject", () => act.reject(k.knock_id)));
    box.append(toast);
    chime();
  }
}

const baseTitle = document.title;
/** "(2) Room · Huddle" while two people wait. @param {number} n */
function showTitleBadge(n) {
  document.title = n ? `(${n}) ${baseTitle}` : baseTitle;
}

/** @type {AudioContext|null} */
let audio = null;
/** A short two-note chime for a knock (silent where autoplay forbids it). */
function chime() {
  try {
    audio ??= new AudioContext();
    const now = audio.currentTime;
    for (const [i, freq] of [660, 880].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.18);
      osc.stop(now + i * 0.18 + 0.17);
    }
  } catch { /* no audio: the toast and the title say it */ }
}

/** @param {string} text */
export function logLine(text) {
  const li = document.createElement("li");
  li.textContent = text;
  $("mod-log").prepend(li);
}
