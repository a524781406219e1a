"""The one check for text the product stores: chat bodies, names, reasons, webhook fields.

Refused, not repaired, so the person who typed it sees why:
- text that is not valid UTF-8 once encoded (a lone surrogate such as
  ``"x\\ud800y"``, which JSON and Python strings can carry): the database
  driver fails on it, and in a group commit that failure took every other
  sender's message down with it;
- NUL, which PostgreSQL text columns cannot hold (SQLite can: refused on both,
  so the rule does not depend on the database);
- other C0/C1 control characters, which make names and messages render
  differently from what was typed; in multi-line text newline and tab stay;
- Unicode bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069),
  which reorder what follows them: a name or a line that reads one way and is
  another ("Trojan Source");
- line and paragraph separators in one-line text (names), where a line break
  would let a name pose as a second line of a page or log.

``text_problem`` says what is wrong (or None); ``text_check`` raises the
product's ``BadRequest`` (services, sockets); ``validate_single_line`` and
``validate_multiline`` are Django validators for forms and model fields.
"""

import re

from django.core.exceptions import ValidationError

from videochat.errors import BadRequest

_SURROGATE = re.compile("[\ud800-\udfff]")
_NUL = "\x00"
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# C0 and C1 controls and DEL, newline and tab excepted; separators checked apart.
_CONTROL_MULTILINE = re.compile("[\x01-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_SINGLE_LINE = re.compile("[\x01-\x1f\x7f-\x9f\u2028\u2029]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored, in words for the person who typed it; None if it can."""
    if _SURROGATE.search(value):
        return "contains characters that are not valid Unicode text"
    if _NUL in value:
        return "contains a NUL character"
    control = _CONTROL_MULTILINE if multiline else _CONTROL_SINGLE_LINE
    if control.search(value):
        if not multiline and ("\n" in value or "\r" in value):
            return "must be a single line"
        return "contains control characters"
    if _BIDI.search(value):
        return "contains text-direction override characters"
    return None


def text_normalize_newlines(value: str) -> str:
    """CRLF and lone CR become LF: what a textarea or another client sends for a line break."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


def text_check(value: str, *, field: str, multiline: bool = False) -> str:
    """``value`` unchanged, or ``BadRequest`` naming ``field`` and the problem."""
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise BadRequest(f"{field} {problem}.", field=field)
    return value


def validate_single_line(value: object) -> None:
    """Django validator for names and other one-line text (forms, model fields)."""
    if isinstance(value, str):
        problem = text_problem(value, multiline=False)
        if problem is not None:
            raise ValidationError(f"This text {problem}.", code="bad_text")


def validate_multiline(value: object) -> None:
    """Django validator for multi-line text (newline and tab allowed)."""
    if isinstance(value, str):
        problem = text_problem(value, multiline=True)
        if problem is not None:
            raise ValidationError(f"This text {problem}.", code="bad_text")
