// The Django admin's filter widgets (SelectFilter2.js: groups and permissions on a user)
// draw help icons as <span aria-label>: a name on an element with no role, which ARIA
// forbids (axe "aria-prohibited-attr"). They are pictures of a word: give them role="img".
// Loaded by templates/admin/base_site.html on every admin page.

/** @param {ParentNode} root */
function nameIcons(root) {
  for (const icon of root.querySelectorAll("span.help-tooltip[aria-label]:not([role])")) {
    icon.setAttribute("role", "img");
  }
}

// The widgets are built after the page loads, by Django's own script.
new MutationObserver(() => nameIcons(document)).observe(document.documentElement, {
  childList: true,
  subtree: true,
});
nameIcons(document);
