"""Untrusted text (ECS messages, gate output, container logs) made safe to show: one place decides how.

`neutralise` is the base every display uses (the terminal progress, the Markdown and HTML trail): terminal
escape sequences and control characters are removed, so an ECS event or a container's output can neither
recolour, move the cursor of, retitle nor rewrite a terminal, and Unicode bidi overrides cannot reorder what
a reader sees. Raw HTML is made inert for Markdown by `md_inline`/`md_block`, and for HTML by `html_text`.
"""

from __future__ import annotations

import html
import re

# ESC [ ... final byte (CSI), ESC ] ... BEL or ESC \ (OSC), ESC P/X/^/_ ... ESC \ (DCS, SOS, PM, APC), then any
# other two-byte ESC sequence, then the 8-bit C1 forms (0x9b CSI, 0x9d OSC).
_TERMINAL_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"
)
# C0 controls but tab and newline, DEL, C1 controls, bidi embedding/override/isolate characters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What could turn untrusted text into markup outside a code block: HTML tags, code spans, emphasis, links.
_MD_SPECIAL = re.compile(r"([\\`*<>\[\]])")


def neutralise(text: object) -> str:
    """Text with terminal escape sequences, control characters and bidi overrides removed (\\r\\n -> \\n)."""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")
    s = _TERMINAL_ESCAPE.sub("", s)
    return _CONTROL.sub("", s)


def one_line(text: object, limit: int | None = None) -> str:
    """Neutralised text on one line (whitespace runs collapsed), cut to `limit` characters with an ellipsis."""
    s = " ".join(neutralise(text).split())
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def md_inline(text: object) -> str:
    """Neutralised text for a Markdown line outside code blocks: HTML and Markdown syntax shown, not interpreted."""
    s = " ".join(neutralise(text).split("\n"))
    return _MD_SPECIAL.sub(r"\\\1", s)


def md_block(text: object) -> str:
    """Neutralised text for inside a ``` code block: HTML is not interpreted there; a fence cannot be closed."""
    return neutralise(text).replace("```", "ʼʼʼ")


def html_text(text: object) -> str:
    """Neutralised text for an HTML page: every <, >, & and quote escaped."""
    return html.escape(neutralise(text), quote=True)
