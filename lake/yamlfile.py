"""Loading a YAML file into a pydantic model so that every file a data engineer writes answers the same way.

Every problem is reported at once, each with the file, line and column of the offending key and its
dotted path (``sources.yaml:14:9: departments.samr.tables[0].cursor: required when ...``), as a
:class:`ConfigError` whose ``issues`` list :class:`ConfigIssue` entries. Duplicate keys are errors
(plain YAML silently keeps the last one); a value YAML 1.1 read as a boolean or a number gets a hint to
quote it. ``sources.yaml`` (connectors), the staging specs (models) and the exports' entitlements use it.

Messages never contain a database URL or the value of an environment variable: a YAML syntax error is
described by its problem and context only, never by the quoted source line.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Indexer",
    "Pos",
    "StrictSafeLoader",
    "Translator",
    "allowed_keys",
    "format_path",
    "load_yaml_model",
    "mark",
    "misspelled_required",
    "model_at",
    "suggest",
    "yaml_issue",
    "yaml_kind",
]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where it is and what is wrong."""

    origin: str  # the file name (or "<dict>")
    line: int | None  # 1-based, None when unknown
    column: int | None  # 1-based
    path: str  # dotted key path, e.g. "departments.samr.tables[0].cursor"; "" for the whole file
    message: str

    @property
    def where(self) -> str:
        if self.line is None:
            return self.origin
        if self.column is None:
            return f"{self.origin}:{self.line}"
        return f"{self.origin}:{self.line}:{self.column}"

    def __str__(self) -> str:
        return f"{self.where}: {self.path}: {self.message}" if self.path else f"{self.where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid.  ``issues`` holds every problem found, in file order.

    Messages never contain a database URL or the value of an environment variable.
    """

    def __init__(self, issues: Sequence[ConfigIssue] | ConfigIssue | str):
        if isinstance(issues, str):
            issues = [ConfigIssue("<config>", None, None, "", issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.issues) == 1:
            return str(self.issues[0])
        origins = sorted({i.origin for i in self.issues})
        head = f"{len(self.issues)} problems in {', '.join(origins)}:"
        return "\n".join([head, *(f"  {i}" for i in self.issues)])


# --------------------------------------------------------------------------------------------------
# YAML loading with positions

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_NODES = 200_000


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys in a mapping (plain YAML keeps the last one silently)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._dup_checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # called once per mapping node before its merge keys are flattened: check the explicit keys
        if id(node) not in self._dup_checked:
            self._dup_checked.add(id(node))
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r} (first on line {seen[key].line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        super().flatten_mapping(node)


@dataclass(frozen=True)
class Pos:
    line: int  # 1-based
    column: int  # 1-based
    raw: str | None  # raw text of a scalar value, for hints
    quoted: bool


def mark(m: yaml.Mark) -> tuple[int, int]:
    return m.line + 1, m.column + 1


class Indexer:
    """Walks the composed node tree: key path -> position, and duplicate keys with their path."""

    def __init__(self, loader: StrictSafeLoader, origin: str):
        self.loader = loader
        self.origin = origin
        self.positions: dict[tuple, Pos] = {}
        self.issues: list[ConfigIssue] = []
        self.visited = 0

    def _key_of(self, key_node: yaml.Node) -> Any:
        if isinstance(key_node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(key_node)
            except yaml.YAMLError:
                return key_node.value
        return None

    def _record(self, path: tuple, at: yaml.Node, value: yaml.Node, overwrite: bool = True) -> None:
        if not overwrite and path in self.positions:
            return
        line, col = mark(at.start_mark)
        raw = value.value if isinstance(value, yaml.ScalarNode) else None
        quoted = isinstance(value, yaml.ScalarNode) and value.style in ("'", '"')
        self.positions[path] = Pos(line, col, raw, quoted)

    def walk(self, node: yaml.Node, path: tuple, stack: frozenset[int], merged: bool = False) -> None:
        self.visited += 1
        if self.visited > _MAX_NODES:
            raise ConfigError(
                ConfigIssue(
                    self.origin, None, None, "", f"the document is too large (more than {_MAX_NODES} nodes)"
                )
            )
        if id(node) in stack:  # recursive alias
            return
        stack = stack | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            merges: list[yaml.Node] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merges.append(value_node)
                    continue
                key = self._key_of(key_node)
                try:
                    hash(key)
                except TypeError:
                    continue
                child = (*path, key)
                if not merged and key in seen:
                    first = seen[key].start_mark.line + 1
                    line, col = mark(key_node.start_mark)
                    self.issues.append(
                        ConfigIssue(
                            self.origin,
                            line,
                            col,
                            format_path(child),
                            f"duplicate key {key!r} (first defined on line {first})",
                        )
                    )
                    continue
                seen.setdefault(key, key_node)
                self._record(child, key_node, value_node, overwrite=not merged)
                self.walk(value_node, child, stack, merged)
            for m in merges:  # keys merged with '<<' point at their anchor definition
                for sub in m.value if isinstance(m, yaml.SequenceNode) else [m]:
                    self.walk(sub, path, stack, merged=True)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                self._record(child, item, item, overwrite=not merged)
                self.walk(item, child, stack, merged)


_PLAIN_KEY = re.compile(r"[^\W\d]\w*\Z")


def format_path(parts: Sequence[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        elif isinstance(p, str) and _PLAIN_KEY.match(p):
            out += ("." if out else "") + p
        else:
            shown = json.dumps(p, ensure_ascii=False) if isinstance(p, str) else repr(p)
            out += f"[{shown}]"
    return out


# --------------------------------------------------------------------------------------------------
# pydantic errors -> ConfigIssues


def unwrap_optional(t: Any) -> Any:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return unwrap_optional(args[0])
    if typing.get_origin(t) is Annotated:
        return unwrap_optional(typing.get_args(t)[0])
    return t


def is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def model_at(loc: Sequence[Any], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for listing its allowed keys)."""
    t: Any = root
    for el in loc:
        t = unwrap_optional(t)
        if is_model(t):
            field = next((f for n, f in t.model_fields.items() if (f.alias or n) == el), None)
            if field is None:
                return None
            t = field.annotation
        elif typing.get_origin(t) in (list, dict):
            t = typing.get_args(t)[-1]
        else:
            return None
    t = unwrap_optional(t)
    return t if is_model(t) else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def suggest(key: Any, allowed: Sequence[str]) -> str | None:
    if not isinstance(key, str):
        return None
    lower = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(key.lower(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None


def misspelled_required(errors: Sequence[Mapping[str, Any]], root: type[BaseModel]) -> set[tuple]:
    """Locations of 'missing' keys for which an unknown key nearby looks like a misspelling: the
    'unknown key ... did you mean' message says it all, so the 'missing' one is dropped."""
    found: set[tuple] = set()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc:
            model = model_at(loc[:-1], root)
            suggestion = suggest(loc[-1], allowed_keys(model)) if model is not None else None
            if suggestion:
                found.add((*loc[:-1], suggestion))
    return found


def yaml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "empty (null)"
    if isinstance(value, str):
        return "text (remove the quotes?)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


_ECHO_TYPES = {
    "literal_error",
    "int_type",
    "int_parsing",
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "bool_type",
    "string_type",
}


class Translator:
    """Pydantic's errors as :class:`ConfigIssue` entries a data engineer can act on: each placed at its key's
    line and column, unknown keys with the allowed ones and a likely misspelling, YAML 1.1 surprises
    (``NO`` read as a boolean) with the quotes that fix them. A file format with messages of its own
    overrides :meth:`message` and falls back to this one."""

    def __init__(self, origin: str, positions: Mapping[tuple, Pos], root: type[BaseModel]):
        self.origin = origin
        self.positions = positions
        self.root = root

    def locate(self, loc: Sequence[Any]) -> tuple[int | None, int | None]:
        best: tuple = ()
        path: tuple = ()
        for el in loc:
            path = (*path, el)
            if path in self.positions:
                best = path
            else:
                break
        if best:
            p = self.positions[best]
            return p.line, p.column
        return (1, 1) if self.positions else (None, None)

    def issue(self, loc: Sequence[Any], message: str, anchor: Sequence[Any] | None = None) -> ConfigIssue:
        line, col = self.locate(anchor if anchor is not None else loc)
        return ConfigIssue(self.origin, line, col, format_path(loc) or "<top level>", message)

    def translate(self, err: Mapping[str, Any]) -> list[ConfigIssue]:
        raw_loc = tuple(err["loc"])
        is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
        loc = tuple(el for el in raw_loc if el != "[key]")
        etype = err["type"]
        ctx = err.get("ctx") or {}
        if etype == "qst_rules" and ctx.get("issues"):
            return [
                self.issue((*loc, *sub), msg, (*loc, *anchor) if anchor else None)
                for sub, msg, anchor in ctx["issues"]
            ]
        message = self.message(err, loc, is_key)
        return [self.issue(loc, message)]

    def message(self, err: Mapping[str, Any], loc: tuple, is_key: bool) -> str:
        etype = err["type"]
        ctx = err.get("ctx") or {}
        value = err.get("input")
        secret_zone = "connection" in loc
        if etype in ("value_error", "assertion_error") and "error" in ctx:
            return str(ctx["error"])
        if etype == "qst_rules":
            return str(err["msg"])
        if etype == "missing":
            return "required key is missing"
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            model = model_at(loc[:-1], self.root)
            allowed = allowed_keys(model) if model is not None else []
            msg = f"unknown key {key!r}"
            suggestion = suggest(key, allowed)
            if suggestion:
                msg += f" (did you mean {suggestion!r}?)"
            if allowed:
                msg += f"; allowed here: {', '.join(allowed)}"
            return msg
        if etype == "too_short":
            return "must not be empty"
        if etype in ("model_type", "model_attributes_type", "dict_type"):
            return f"must be a mapping (key: value lines), not {yaml_kind(value)}"
        if etype == "list_type":
            return f"must be a list, e.g. [A, B] or '- item' lines, not {yaml_kind(value)}"
        if etype == "string_type":
            what = "key" if is_key else "value"
            msg = f"{what} must be text, not {yaml_kind(value)}"
            pos = self.positions.get(loc)
            if isinstance(value, (bool, int, float)) and not secret_zone:
                raw = pos.raw if (pos is not None and not is_key and pos.raw is not None) else str(value)
                msg += f': YAML read {raw} as {yaml_kind(value)}; put it in quotes: "{raw}"'
            return msg
        if etype == "int_type":
            return f"must be a whole number, not {yaml_kind(value)}"
        msg = str(err["msg"])
        if msg.startswith("Input should be"):
            msg = "must be" + msg[len("Input should be") :]
        if (
            etype in _ECHO_TYPES
            and not secret_zone
            and isinstance(value, (str, int, float))
            and not isinstance(value, bool)
            and len(str(value)) <= 80
        ):
            msg += f" (got {value!r})"
        return msg


def yaml_issue(origin: str, exc: yaml.YAMLError) -> ConfigIssue:
    # build the message from problem/context only: str(exc) quotes the source line, which could hold a secret
    if isinstance(exc, yaml.MarkedYAMLError):
        at = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        text = "invalid YAML: " + (", ".join(parts) if parts else "syntax error")
        if at is not None:
            line, col = mark(at)
            return ConfigIssue(origin, line, col, "", text)
        return ConfigIssue(origin, None, None, "", text)
    return ConfigIssue(origin, None, None, "", "invalid YAML")


M = typing.TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Load any YAML file into a pydantic ``model`` with this module's error reporting: every problem at
    once, each as ``file:line:col: dotted.key: message`` (:class:`ConfigError`); duplicate keys refused.
    Other configuration files (the staging specs of ``models/staging``) use it so that every file a data
    engineer writes answers in the same way."""
    path = Path(path)
    origin = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            ConfigIssue(origin, None, None, "", f"cannot read the file: {exc.strerror}")
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(ConfigIssue(origin, None, None, "", "the file is not valid UTF-8")) from None
    loader = StrictSafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                raise ConfigError(ConfigIssue(origin, None, None, "", "the file is empty"))
            indexer = Indexer(loader, origin)
            indexer.walk(node, (), frozenset())
            if indexer.issues:
                raise ConfigError(sorted(indexer.issues, key=lambda i: (i.line or 0, i.column or 0)))
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_issue(origin, exc)) from None
    finally:
        loader.dispose()
    tr = Translator(origin, indexer.positions, model)
    if not isinstance(data, dict):
        raise ConfigError(tr.issue((), f"the file must be a mapping, not {yaml_kind(data)}"))
    try:
        return model.model_validate(data, context={"origin": origin, **(context or {})})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        misspelled = misspelled_required(errors, model)
        issues = [
            i
            for err in errors
            if not (err["type"] == "missing" and tuple(err["loc"]) in misspelled)
            for i in tr.translate(err)
        ]
        issues.sort(key=lambda i: (i.line if i.line is not None else 0, i.column or 0))
        raise ConfigError(issues) from None
