"""The automated accessibility check of the browser tests: axe-core (from ``node_modules``,
installed by ``npm ci``), run inside the page, WCAG 2.1 A and AA rules.

``assert_accessible(page, "call")`` fails with each serious or critical violation, its rule,
help text and the first offending elements. A missing ``axe.min.js`` is a failure, not a skip.
"""

from pathlib import Path

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


def violations(page) -> list[dict]:
    """Every axe violation on the page as it is now (all impacts)."""
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` (bin/bootstrap --test does)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # As a DevTools evaluation, not a <script> tag: the page's CSP forbids inline scripts.
        page.evaluate(AXE.read_text() + "\n;undefined")
    return page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))",
        TAGS,
    )


def assert_accessible(page, where: str) -> None:
    """No serious or critical WCAG 2.1 AA violation on ``page`` (named ``where`` in the failure)."""
    found = [v for v in violations(page) if v["impact"] in BLOCKING]
    assert not found, f"axe on the {where} page:\n" + "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in found
    )
