"""Control characters, and the one way they are shown: as Python writes them (``\\x1b``, ``\\n``).

What the commands print (:mod:`pipelines.cli.text`) and what the DAGs' docs say
(:mod:`pipelines.wiring.docs`) hold user text: a cell of a table, a metric, a description, a
params key. A control character in it would act instead of being seen: an escape sequence
retitles or clears the terminal, a newline splits a line, a row or a Markdown table. Both show
each as its escape, and every other character (``é``, ``中文``) as it is.
"""

from __future__ import annotations

# What a terminal or a renderer acts on instead of showing: the C0 controls (newline and tab
# too: inside a value they break its line or its column), DEL, the C1 controls (ESC's 8-bit
# twins: 0x9b is CSI), the line and paragraph separators, and the bidirectional marks and
# overrides that reorder what follows them on screen ("Trojan Source", CVE-2021-42574).
_CONTROLS = (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
ESCAPES: dict[int, str] = {
    c: NAMED.get(c) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in (*_CONTROLS, *_BIDI)
}


def escaped(value: object) -> str:
    """``value`` as text that shows every control character (see ``ESCAPES``) as its escape,
    and everything else as it is."""
    return str(value).translate(ESCAPES)
