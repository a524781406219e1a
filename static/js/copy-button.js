// Copy buttons on server pages (room settings): <button data-copy="ID"> copies
// the value of the input #ID and says so in the live region #ID-status.
// Standalone: no other module uses it, and it uses none.

/**
 * @param {HTMLInputElement} input
 * @returns {Promise<boolean>}
 */
async function copyValue(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    // No clipboard API (an http page that is not localhost): select the text
    // so Ctrl+C copies it, and say so.
    input.focus();
    input.select();
    return false;
  }
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const id = button.getAttribute("data-copy") || "";
  const input = document.getElementById(id);
  const status = document.getElementById(`${id}-status`);
  if (!(input instanceof HTMLInputElement)) continue;
  button.removeAttribute("hidden");
  button.addEventListener("click", async () => {
    const copied = await copyValue(input);
    if (status) status.textContent = copied ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
  });
}
