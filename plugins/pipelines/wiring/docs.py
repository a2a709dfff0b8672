"""The one escaping of user text in the docs the DAGs carry (``doc_md``, shown as Markdown).

A registry value, a workflow's params key, a source: each is shown literally, whatever it holds.
:func:`text` makes a string literal Markdown text that stays in its table cell and its line: a
control character as its escape (a newline as ``\\n``, see
:mod:`pipelines.common.control_chars`), Markdown's inline marks and the cell's pipe escaped with
a backslash, and ``<``, ``>``, ``&``, ``{``, ``}`` as character references, so neither HTML nor
Jinja (``{{ }}``, ``{% %}``) is ever written into a doc. :func:`code` shows a name as inline code
when a code span can hold it literally, and as :func:`text` otherwise. Every doc generator
(:mod:`pipelines.wiring.factory`, :mod:`~pipelines.wiring.stages`,
:mod:`~pipelines.wiring.cookbooks`, :mod:`~pipelines.wiring.maintenance`) puts user text in
through these two.
"""

from __future__ import annotations

from pipelines.common.control_chars import ESCAPES

EMPTY = "–"  # what an empty value shows (an empty cell reads as a missing one)
_MARKS = {ord(c): "\\" + c for c in "\\`*_~[]|"}
_REFERENCES = {ord(c): f"&#{ord(c)};" for c in "<>&{}"}
# a control character as its escape, whose backslash is escaped as the user's own are
_CONTROLS = {c: shown.replace("\\", "\\\\") for c, shown in ESCAPES.items()}
_MARKDOWN = _MARKS | _REFERENCES | _CONTROLS
# what a code span cannot hold literally and safely: a backtick ends it, a pipe its table cell,
# a control character its line, and HTML or Jinja text is kept out of the docs altogether (in a
# span too); a lone brace (a source's ``{ds}``) is plain text to both
_NOT_IN_CODE = {chr(c) for c in _MARKDOWN} - set("*_~[]{}")
_JINJA = ("{{", "{%", "{#")


def text(value: object) -> str:
    """``value`` as literal Markdown text, in one line and one table cell (``–`` when empty)."""
    return str(value).translate(_MARKDOWN) or EMPTY


def code(value: object) -> str:
    """``value`` as inline code (`` `orders` ``) when a code span holds it literally, else as
    :func:`text`."""
    value = str(value)
    if value and not _NOT_IN_CODE & set(value) and not any(j in value for j in _JINJA):
        return f"`{value}`"
    return text(value)
