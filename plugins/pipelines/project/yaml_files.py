"""Reading the project's YAML files: the one reader every config file of ``include/`` goes through
(``aggregates.yaml``, ``workflows.yaml``, ``cookbooks.yaml``, ``columns.yaml``,
``namespaces.yaml``).

A file is composed first (libyaml's safe parser when PyYAML has it) and measured before anything
builds or walks its values: aliases that would repeat more values, or more characters, than
the file is worth (a "billion laughs" bomb, or a few long strings repeated) and nesting deeper
than any config needs are refused, as is a file that is not YAML, not UTF-8 or cannot be read.
Each refusal is one :class:`~pipelines.exceptions.ConfigError` line naming the file, with the
line and column where the YAML has them, e.g. ``workflows.yaml: yaml: cannot parse (line 9,
column 13): aliases expand to more than the 100,000 values allowed (a YAML bomb?)``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pipelines.exceptions import ConfigError, Problem

MAX_DEPTH = 64  # levels of nesting; the deepest config file needs about six
EXPANSION_FLOOR = 100_000  # values the aliases of a file may always expand it to
EXPANSION_FACTOR = 10  # ... or this many times the values the file writes, when that is more
EXPANSION_CHARS_FLOOR = 10_000_000  # characters of scalars they may always expand it to (or
# EXPANSION_FACTOR times the file's own characters): the size its values take once built,
# hashed or written as JSON


def read_yaml(path: Path) -> Any:
    """The Python value of the YAML file at ``path`` (None: empty), as PyYAML's safe loader
    builds it (dates as dates; an alias is the same object as its anchor).

    :raises ConfigError: the file cannot be read, is not YAML, or is refused (see the module)
    """
    import yaml

    node = compose_yaml(path)
    if node is None:
        return None
    try:
        return yaml.constructor.SafeConstructor().construct_document(node)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2024-13-01
        raise _refused(path, exc) from None


def compose_yaml(path: Path):
    """The YAML node graph of the file at ``path`` (None: empty), measured: a caller that needs
    each value's line reads the nodes (``node.start_mark.line``).

    :raises ConfigError: as :func:`read_yaml`
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _refused(path, exc) from None
    loader = _loader()(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _refused(path, exc) from None
    finally:
        loader.dispose()
    if node is not None:
        _measure(path, node, len(text))
    return node


@lru_cache(maxsize=1)
def _loader():
    """libyaml's safe loader when PyYAML has it (it refuses nesting past 1,000 levels itself),
    else PyYAML's own, made to refuse nesting past :data:`MAX_DEPTH` as it reads: its scanner
    looks ahead past every open ``[`` (quadratic in them) and its composer recurses once per
    level."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        return fast

    class Loader(yaml.SafeLoader):
        depth = 0

        def fetch_flow_collection_start(self, token_class):
            if self.flow_level >= MAX_DEPTH:
                raise yaml.scanner.ScannerError(None, None, _too_deep(), self.get_mark())
            super().fetch_flow_collection_start(token_class)

        def compose_node(self, parent, index):
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    at = self.peek_event().start_mark
                    raise yaml.composer.ComposerError(None, None, _too_deep(), at)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def _measure(path: Path, root, file_chars: int) -> None:
    """Refuse a node graph nested deeper than :data:`MAX_DEPTH`, holding an alias inside its own
    anchor (a value that contains itself), or whose aliases expand it past :func:`_allowed`
    values or past :func:`_allowed_chars` characters of scalars (``file_chars``: the file's
    own). Each node is measured once (an alias is its anchor's node), so the measure takes the
    time of the file, not of its expansion."""
    sizes: dict[int, int] = {}  # collections only: a scalar is one value, one level
    chars: dict[int, int] = {}  # collections only: a scalar is its own length
    depths: dict[int, int] = {}
    written = 1  # the nodes the file writes (an alias of a scalar counts once per use)
    order = []  # collections as measured: each after its children
    path_to: set[int] = set()  # the collections being measured: the current one and its parents
    stack = [(root, None, None)]  # (node, its parent, its children once they are measured)
    while stack:
        node, parent, children = stack.pop()
        key = id(node)
        if key in sizes or node.id == "scalar":
            continue  # an alias of a collection measured already, or a root scalar
        if children is None:
            if key in path_to:
                raise _refused(path, "an alias inside its own anchor", parent.start_mark)
            children = _children(node)
            written += len(children)
            path_to.add(key)
            stack.append((node, parent, children))
            stack.extend(
                (c, node, None) for c in children if c.id != "scalar" and id(c) not in sizes
            )
            continue
        path_to.discard(key)
        sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in children)
        chars[key] = sum(
            len(child.value) if child.id == "scalar" else chars[id(child)] for child in children
        )
        depths[key] = 1 + max((depths.get(id(child), 1) for child in children), default=0)
        if depths[key] > MAX_DEPTH:
            raise _refused(path, _too_deep(), node.start_mark)
        order.append(node)
    for measured, allowed, what in (
        (sizes, _allowed(written), "values"),
        (chars, _allowed_chars(file_chars), "characters"),
    ):
        if measured.get(id(root), 0) > allowed:  # the first node over it: where the user looks
            first = next(node for node in order if measured[id(node)] > allowed)
            said = f"aliases expand to more than the {allowed:,} {what} allowed (a YAML bomb?)"
            raise _refused(path, said, first.start_mark)


def _allowed(written: int) -> int:
    """How many values a file writing ``written`` of them may expand to through its aliases."""
    return max(EXPANSION_FLOOR, EXPANSION_FACTOR * written)


def _allowed_chars(file_chars: int) -> int:
    """How many characters of scalars a file of ``file_chars`` characters may expand to."""
    return max(EXPANSION_CHARS_FLOOR, EXPANSION_FACTOR * file_chars)


def _children(node) -> list:
    """A sequence's or a mapping's nodes (a mapping's keys and values)."""
    if node.id == "sequence":
        return node.value
    return [part for pair in node.value for part in pair]


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels"


def _refused(path: Path, why: Exception | str, mark=None) -> ConfigError:
    """The one-line error for a file refused as a whole (the line and column of ``mark``, or of
    the YAML error's own mark)."""
    mark = mark or getattr(why, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    if isinstance(why, OSError):
        message = f"cannot read: {why.strerror or why}"
    elif isinstance(why, Exception):
        said = [getattr(why, "context", None), getattr(why, "problem", None)]
        detail = ": ".join(filter(None, said)) or (str(why).splitlines() or [type(why).__name__])[0]
        message = f"cannot parse{where}: {detail}"
    else:
        message = f"cannot parse{where}: {why}"
    return ConfigError([Problem(path.name, None, "yaml", message, True)])
