"""Exceptions of subs_model.

Data problems in a ledger (a rejected activation, a quarantined row) are *values*
returned beside the result; bugs and bad configuration raise. Every exception
subclasses both :class:`SubsModelError` and the matching builtin, so callers may
catch either, and every message says what is wrong, with which value, and how to fix it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


class SubsModelError(Exception):
    """Base class of every error raised by subs_model."""


class CatalogError(SubsModelError, ValueError):
    """The catalog (prices, rule knobs, versions) is invalid."""


class LedgerError(SubsModelError, ValueError):
    """A ledger table is malformed (missing column, unparseable value, duplicate key)."""


class LedgerFileError(LedgerError, OSError):
    """A ledger file cannot be found or read."""


class SimulationError(SubsModelError, ValueError):
    """The arguments of a simulation are invalid (dates, seed, size)."""


class ProfileError(SubsModelError, ValueError):
    """A source profile (how an export is written) is invalid."""


class MetricsError(SubsModelError, ValueError):
    """The arguments of a metric are invalid (an unknown grouping, edition or window)."""


class OutputError(SubsModelError, OSError):
    """An output file or folder cannot be written."""


#: How much YAML aliases (``*name``) may repeat in one file: every value an alias copies out
#: counts 1, plus the characters of copied text. Repeating a price block through an alias is
#: fine; a "billion laughs" (aliases of aliases) is refused before anything is expanded.
YAML_ALIAS_LIMIT = 10_000
#: Deepest nesting of mappings and lists a YAML file may have.
YAML_DEPTH_LIMIT = 50


class _YamlRefused(ValueError):
    """A YAML document the strict loader refuses; the message does not name the file yet."""


@functools.cache
def _strict_loader() -> type:
    """``yaml.SafeLoader`` that refuses duplicate keys, alias bombs, recursive aliases and deep nesting."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._open_anchors: list[str | None] = []
            self._sizes: dict[int, int] = {}
            self._repeated = 0
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent):
                if event.anchor in self._open_anchors:
                    msg = f"the alias *{event.anchor} on line {line} is inside the node it names (a recursive alias); remove it"
                    raise _YamlRefused(msg)
                node = super().compose_node(parent, index)
                self._repeated += self._expanded_size(node)
                if self._repeated > YAML_ALIAS_LIMIT:
                    msg = (
                        f"its aliases repeat more than {YAML_ALIAS_LIMIT:,} values (limit passed at *{event.anchor} "
                        f"on line {line}); write the values out instead of repeating them through aliases"
                    )
                    raise _YamlRefused(msg)
                return node
            if self._depth >= YAML_DEPTH_LIMIT:
                msg = f"it nests deeper than {YAML_DEPTH_LIMIT} levels (line {line}); flatten the structure"
                raise _YamlRefused(msg)
            self._depth += 1
            self._open_anchors.append(event.anchor)
            try:
                return super().compose_node(parent, index)
            finally:
                self._open_anchors.pop()
                self._depth -= 1

        def _expanded_size(self, node: Any) -> int:
            """Values of ``node`` with every alias inside copied out (text adds its characters), capped."""
            size = self._sizes.get(id(node))
            if size is None:
                if isinstance(node, yaml.ScalarNode):
                    size = 1 + len(node.value)
                elif isinstance(node, yaml.SequenceNode):
                    size = 1 + sum(self._expanded_size(n) for n in node.value)
                else:
                    size = 1 + sum(self._expanded_size(k) + self._expanded_size(v) for k, v in node.value)
                size = min(size, YAML_ALIAS_LIMIT + 1)
                self._sizes[id(node)] = size
            return size

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # '<<: *base' with a key that overrides it is YAML's merge, not a duplicate
                    key = self.construct_object(key_node, deep=True)
                    line = key_node.start_mark.line + 1
                    try:
                        first = seen.get(key)
                    except TypeError:
                        continue  # an unhashable key: the SafeLoader reports it below
                    if first is not None:
                        msg = f"the key {key!r} is given twice (line {first}, then line {line}); keep one of them"
                        raise _YamlRefused(msg)
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_yaml(text: str) -> Any:
    r"""Parse YAML ``text`` safely: plain data only, no duplicate keys, aliases within ``YAML_ALIAS_LIMIT``.

    Raises ``yaml.YAMLError`` for a syntax error and a ``ValueError`` subclass for a refused
    document; :func:`read_yaml` turns both into the caller's one-line error.

    >>> load_yaml("a: 1\nb: [x, y]")
    {'a': 1, 'b': ['x', 'y']}
    """
    import yaml

    return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: "str | Path", error: type[SubsModelError], what: str) -> Any:
    r"""The YAML document at ``path``, or ``error`` with one line naming the file, the problem and the fix.

    ``what`` names the file's role in the message ("the catalog", "scenarios", …). The
    document is read by a ``yaml.SafeLoader`` that also refuses a key given twice in one
    mapping (naming the key and both lines), aliases that would repeat more than
    ``YAML_ALIAS_LIMIT`` values, recursive aliases and nesting deeper than
    ``YAML_DEPTH_LIMIT`` levels.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x.yaml"
    >>> _ = f.write_text("a: 1\na: 2\n")
    >>> read_yaml(f, CatalogError, "the catalog")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    subs_model.errors.CatalogError: ...x.yaml: the catalog is refused: the key 'a' is given twice (line 1, then line 2); keep one of them
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{p}: cannot read {what} ({exc.strerror or exc}); check the path"
        raise error(msg) from None
    except UnicodeDecodeError as exc:
        msg = f"{p}: {what} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        raise error(msg) from None
    try:
        return load_yaml(text)
    except _YamlRefused as exc:
        msg = f"{p}: {what} is refused: {exc}"
        raise error(msg) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" on line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(exc.problem or exc.context or "").split())
        msg = f"{p}: {what} is not valid YAML ({problem}{where}); fix the syntax"
        raise error(msg) from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        msg = f"{p}: {what} is not valid YAML ({problem}); fix the syntax"
        raise error(msg) from None
