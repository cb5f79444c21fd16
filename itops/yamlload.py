"""Safe YAML loading with line numbers, and pydantic validation that reports every problem at once.

Every YAML file itops reads (inventory, schedules, playbooks, declarative checks) goes
through here so users get the same kind of message everywhere::

    inventory/lab.yaml:12: hosts.web1.port: must be 1-65535
    inventory/lab.yaml:14: hosts.web1.prot: unknown key 'prot' (did you mean 'port'?)

- :func:`read_yaml` parses with a safe loader (libyaml's ``CSafeLoader`` when present, else
  ``yaml.SafeLoader``: plain data only, never arbitrary objects),
  records the line of every mapping key and sequence item in a :class:`LineMap`, and
  reports duplicate keys (named as written: ``yes`` and ``true`` are the same key once
  loaded) and syntax errors as :class:`ConfigProblem` instead of raising. The node graph is
  walked once by identity, so aliases cost nothing to walk; a recursive alias and an alias
  expansion beyond :data:`MAX_EXPANDED_NODES` / :data:`MAX_EXPANSION_FACTOR` are problems
  too, found before the document is constructed.
- :func:`validate_model` validates data against a pydantic model (use
  :class:`StrictModel`: unknown keys are errors) and turns each pydantic error into a
  problem with file, line, dotted path and a human message.
- The value types (``1h30m`` durations, ``10MB`` sizes, ports, :class:`StrictModel`) live in
  :mod:`itops.yamltypes` and are re-exported here.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from itops.errors import ConfigError, ConfigProblem
from itops.yamltypes import (
    Duration,
    EnvName,
    OptionalMapping,
    Port,
    PositiveDuration,
    Size,
    StrictModel,
    StrList,
    parse_duration,
    parse_size,
)

__all__ = [
    "Duration",
    "EnvName",
    "ErrorFactory",
    "LineMap",
    "OptionalMapping",
    "Port",
    "PositiveDuration",
    "Size",
    "StrList",
    "StrictModel",
    "YamlDocument",
    "format_path",
    "load_yaml_with_lines",
    "parse_duration",
    "parse_size",
    "parse_yaml_text",
    "raise_if_problems",
    "read_yaml",
    "suggest",
    "unknown_name",
    "validate_model",
]

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
#: Builds the error to raise from the collected problems, e.g. ``InventoryError`` or
#: ``lambda p: ConfigError(p, what="schedule")``.
ErrorFactory = Callable[[list[ConfigProblem]], ConfigError]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class LineMap:
    """Line (1-based) of every mapping key and sequence item, keyed by its key path.

    Path elements are compared as strings, so ``("waivers", 0)`` and ``("waivers", "0")``
    name the same item and an integer mapping key matches its pydantic-coerced string.
    """

    def __init__(self) -> None:
        self._lines: dict[tuple[str, ...], int] = {(): 1}

    @staticmethod
    def _key(path: Sequence[object]) -> tuple[str, ...]:
        return tuple(str(p) for p in path)

    def record(self, path: Sequence[object], line: int) -> None:
        """Remember ``line`` for ``path`` unless a line is already known (first wins)."""
        self._lines.setdefault(self._key(path), line)

    def get(self, path: Sequence[object]) -> int | None:
        """The line of exactly ``path``, or None."""
        return self._lines.get(self._key(path))

    def nearest(self, path: Sequence[object]) -> int:
        """The line of ``path`` or, when it is absent (a missing key), of its closest ancestor."""
        key = self._key(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines[()]


@dataclass
class YamlDocument:
    """A parsed YAML file: its data, line map, and the problems found while parsing."""

    file: str
    data: Any
    lines: LineMap
    digest: str  # sha256 hex of the file's bytes
    problems: list[ConfigProblem] = field(default_factory=list)


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's parser is ~10x faster (inventories of thousands of hosts); same safe constructor
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: Aliases may expand a document to at most this many values, or to this many times the values
#: written, whichever is larger: a shared ``vars: *common`` is fine, a 400-byte alias bomb is not.
MAX_EXPANDED_NODES = 1_000_000
MAX_EXPANSION_FACTOR = 10


class _LineLoader(_SafeLoader):
    """SafeLoader that also walks the node tree to record lines and find duplicate keys and alias abuse."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.line_map = LineMap()
        self.problems: list[ConfigProblem] = []
        self._seen: set[int] = set()
        self._active: set[int] = set()  # nodes on the path being walked: meeting one again is a cycle

    def _key_value(self, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self.construct_object(node)  # typed, like the constructed mapping key
            except yaml.YAMLError:
                return node.value
            return value
        return f"<complex key at line {node.start_mark.line + 1}>"

    @staticmethod
    def _written(node: yaml.Node) -> str:
        """A key as the user wrote it (``yes``, ``0x1``), for messages."""
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return f"<complex key at line {node.start_mark.line + 1}>"

    def walk(self, node: yaml.Node, path: KeyPath, shown: KeyPath = (), line: int = 1) -> None:
        """Record lines and duplicate keys; every node is walked once (by identity).

        An alias points back at an anchored node already walked (its lines stay with the
        anchor). An alias to a node that contains it is a recursive alias: a problem at the
        line where it is used, and the document is not constructed.
        ``path`` is the key path as loaded (for the LineMap, which pydantic locations use);
        ``shown`` the same path with keys as written (for messages).
        """
        if id(node) in self._active:
            self.problems.append(
                ConfigProblem(
                    self.file,
                    line,
                    format_path(shown),
                    "recursive alias: it refers to a mapping or list that contains it "
                    f"(anchored at line {node.start_mark.line + 1}); YAML data must not contain itself",
                )
            )
            return
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                self._walk_mapping(node, path, shown)
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    child = (*path, str(index))  # stored as text, like every LineMap key
                    # an alias item has the anchored node's position: the list's own line is nearer
                    item_line = line if id(item) in self._seen else item.start_mark.line + 1
                    self.line_map.record(child, item_line)
                    self.walk(item, child, (*shown, index), item_line)
        finally:
            self._active.discard(id(node))

    def _walk_mapping(self, node: yaml.MappingNode, path: KeyPath, shown: KeyPath) -> None:
        first: dict[object, tuple[str, int]] = {}
        merges: list[tuple[yaml.Node, int]] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merges.append((value_node, line))
                continue
            key = self._key_value(key_node)
            written = self._written(key_node)
            try:
                earlier = first.get(key)
            except TypeError:  # unhashable key: the constructor reports it
                continue
            if earlier is not None:
                self.problems.append(
                    ConfigProblem(
                        self.file, line, format_path((*shown, written)), _duplicate(written, key, line, *earlier)
                    )
                )
                continue
            first[key] = (written, line)
            child = (*path, str(key))
            self.line_map.record(child, line)
            self.walk(value_node, child, (*shown, written), line)
        for value_node, line in merges:  # after the explicit keys, which win
            self._walk_merged(value_node, path, line)
            self.walk(value_node, path, shown, line)

    def _walk_merged(self, node: yaml.Node, path: KeyPath, line: int) -> None:
        # Merged keys (``<<: *anchor``) point at the ``<<`` line, where the user wrote them here.
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if isinstance(source, yaml.MappingNode):
                for key_node, _value in source.value:
                    self.line_map.record((*path, str(self._key_value(key_node))), line)


def _yaml_repr(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


def _duplicate(written: str, key: object, line: int, first_written: str, first_line: int) -> str:
    if written == first_written:
        return f"duplicate key {written!r}: first at line {first_line}, again at line {line}"
    # ``yes`` and ``true``, ``1`` and ``0x1``, or ``1`` and ``true`` (true == 1 in the loaded data)
    return (
        f"duplicate key {written!r}: YAML reads it as {_yaml_repr(key)}, the same key as {first_written!r} "
        f'at line {first_line} once loaded (quote keys to keep them apart, e.g. "{written}")'
    )


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """``(values written, values after expanding aliases)`` of an acyclic node graph, each node sized once."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            kids = []
        if children_done or not kids:
            sizes[id(node)] = 1 + sum(sizes[id(k)] for k in kids)
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    return len(sizes), sizes[id(root)]


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    # An impossible date (2027-02-30) stays a string, so validation reports it with its path.
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _yaml_error_problem(file: str, err: yaml.YAMLError) -> ConfigProblem:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        message = ": ".join(p for p in (err.context, err.problem) if p) or str(err)
        if err.context_mark and err.problem_mark and err.context_mark.line != err.problem_mark.line:
            message += f" (started at line {err.context_mark.line + 1})"
        return ConfigProblem(file, mark.line + 1 if mark else None, "", f"YAML syntax error: {message}")
    return ConfigProblem(file, None, "", f"YAML error: {err}")


def parse_yaml_text(text: str, file: str, digest: str = "") -> YamlDocument:
    """Parse YAML ``text`` (named ``file`` in messages) into a :class:`YamlDocument`."""
    loader = _LineLoader(text, file)
    try:
        node = loader.get_single_node()
        data: Any = None
        if node is not None:
            loader.walk(node, ())
            if any(p.message.startswith("recursive alias") for p in loader.problems):
                return YamlDocument(file, None, loader.line_map, digest, loader.problems)
            written, expanded = _expanded_size(node)
            limit = max(MAX_EXPANDED_NODES, MAX_EXPANSION_FACTOR * written)
            if expanded > limit:
                message = (
                    f"aliases expand this file to {expanded:,} values ({written:,} written); the limit is "
                    f"{limit:,}: write the data out, or share less through anchors (*alias)"
                )
                return YamlDocument(file, None, loader.line_map, digest, [ConfigProblem(file, 1, "", message)])
            data = loader.construct_document(node)
    except yaml.YAMLError as err:
        return YamlDocument(file, None, loader.line_map, digest, [_yaml_error_problem(file, err)])
    except (ValueError, TypeError, RecursionError) as err:  # raised by constructors, no position
        return YamlDocument(file, None, loader.line_map, digest, [ConfigProblem(file, None, "", f"YAML error: {err}")])
    finally:
        loader.dispose()
    return YamlDocument(file, data, loader.line_map, digest, loader.problems)


def read_yaml(path: str | Path, error: ErrorFactory = ConfigError) -> YamlDocument:
    """Read and parse one YAML file safely; content problems are returned, not raised.

    Raises ``error([...])`` only when the file cannot be read at all.
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise error([ConfigProblem(file, None, "", f"cannot read file: {err.strerror or err}")]) from err
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        return YamlDocument(file, None, LineMap(), digest, [ConfigProblem(file, line, "", "not UTF-8 text")])
    return parse_yaml_text(text, file, digest)


def load_yaml_with_lines(path: str | Path, error: ErrorFactory = ConfigError) -> tuple[Any, LineMap]:
    """Load a YAML file safely and return ``(data, LineMap)``.

    Syntax errors and duplicate keys are raised together as ``error(problems)``.
    """
    doc = read_yaml(path, error)
    raise_if_problems(doc.problems, error)
    return doc.data, doc.lines


def raise_if_problems(problems: list[ConfigProblem], error: ErrorFactory) -> None:
    """Raise ``error(problems)``, sorted by line, when there is any problem."""
    if problems:
        raise error(sorted(problems, key=lambda p: (p.file, p.line or 0)))


def format_path(path: Iterable[object]) -> str:
    """``("waivers", 0, "check")`` -> ``waivers[0].check``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def suggest(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, known: Collection[str]) -> str:
    """``unknown group 'wbe' (did you mean 'web'?)``, or the known names when none is close."""
    hint = suggest(name, known)
    if not hint:
        listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
        hint = f"; known {kind}s: {listed}" if known else f"; no {kind}s are defined"
    return f"unknown {kind} {name!r}{hint}"


# --- pydantic errors -> problems ---------------------------------------------------------

_TYPE_MESSAGES = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "expected a date (YYYY-MM-DD) without a time",
}


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(annotation: object) -> Iterator[object]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        yield from _unwrap(typing.get_args(annotation)[0])
    elif origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            yield from _unwrap(arg)
    else:
        yield annotation


def _model_at(model: type[BaseModel] | None, loc: Sequence[object]) -> type[BaseModel] | None:
    """The model class that validates the mapping found at ``loc`` (for key suggestions)."""
    current: object = model
    for part in loc:
        nxt: object = None
        for t in _unwrap(current):
            if isinstance(t, type) and issubclass(t, BaseModel):
                info = t.model_fields.get(str(part))
                if info is not None:
                    nxt = info.annotation
                    break
            elif typing.get_origin(t) in (dict, Mapping) or typing.get_origin(t) in (list, tuple, Sequence):
                nxt = typing.get_args(t)[-1] if typing.get_args(t) else None
                break
        if nxt is None:
            return None
        current = nxt
    for t in _unwrap(current):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _nested_home(parent: type[BaseModel], key: str) -> str | None:
    """The field of ``parent`` holding a sub-mapping whose model has ``key`` (where a misplaced key belongs)."""
    for name, info in parent.model_fields.items():
        for t in _unwrap(info.annotation):
            if isinstance(t, type) and issubclass(t, BaseModel) and key in t.model_fields:
                return name
    return None


def _human_message(err: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind, loc, ctx = err["type"], err["loc"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = loc[-1]
        parent = _model_at(model, loc[:-1])
        internal = parent.internal_fields if parent and issubclass(parent, StrictModel) else frozenset()
        allowed = sorted(set(parent.model_fields) - internal) if parent else []
        home = _nested_home(parent, str(key)) if parent else None
        if home:  # e.g. `rto` dedented out of `restore_test:`: say where it goes, not "did you mean 'rpo'"
            return f"unknown key {str(key)!r}: {key} belongs under {home}:"
        hint = suggest(key, allowed) or (f" (allowed keys: {', '.join(allowed)})" if allowed else "")
        return f"unknown key {str(key)!r}{hint}"
    if kind == "missing":
        return f"missing required key {str(loc[-1])!r}"
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_describe(err['input'])}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {_describe(err['input'])}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}, got {_describe(err['input'])}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {_describe(err['input'])}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {_describe(err['input'])}"
    return str(err["msg"])


def validate_model(
    model: type[M],
    data: object,
    *,
    file: str,
    lines: LineMap,
    prefix: KeyPath = (),
    ignore: Iterable[KeyPath] = (),
) -> tuple[M | None, list[ConfigProblem]]:
    """Validate ``data`` (found at ``prefix`` in the file) against ``model``.

    Returns ``(instance, problems)``; ``instance`` is None when pydantic rejects the data,
    with one problem per pydantic error. Problems at a path in ``ignore`` (already reported
    another way) are dropped. Keys naming the model's ``internal_fields`` are problems too.
    """
    problems: list[ConfigProblem] = []
    internal = model.internal_fields if issubclass(model, StrictModel) else frozenset()
    if internal and isinstance(data, Mapping) and internal.intersection(data):
        for key in sorted(internal.intersection(data)):
            where = (*prefix, key)
            problems.append(ConfigProblem(file, lines.nearest(where), format_path(where), f"unknown key {key!r}"))
        data = {k: v for k, v in data.items() if k not in internal}
    try:
        return model.model_validate(data), problems
    except ValidationError as exc:
        skip = {tuple(str(p) for p in path) for path in ignore}
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if p != "[key]")
            full = (*prefix, *loc)
            if tuple(str(p) for p in full) in skip:
                continue
            message = _human_message({**err, "loc": loc}, model)
            if err["type"] == "missing":
                full = full[:-1]
            problems.append(ConfigProblem(file, lines.nearest(full), format_path(full), message))
        return None, problems
