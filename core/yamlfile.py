"""YAML loading that remembers where every value came from, for errors that name file and line."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from core.errors import FollowupError

if TYPE_CHECKING:  # PyYAML is imported where a file is read: a command whose configuration comes from the
    import yaml  # cache (core/cache.py) never parses YAML

Location = tuple[Any, ...]


class ConfigError(FollowupError):
    """Bad configuration or content file; ``str()`` is the message for the user."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class LocatedYaml:
    path: Path
    data: Any
    lines: dict[Location, int]

    def line_of(self, loc: Location) -> int | None:
        """The line of ``loc`` or of its nearest located parent."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


def _loader() -> type:
    """libyaml when PyYAML was built with it (several times faster); the pure-Python parser otherwise."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR = "tag:yaml.org,2002:str"


def _walk(node: yaml.Node, loc: Location, lines: dict[Location, int], duplicates: list[str],
          constructor: yaml.constructor.SafeConstructor) -> None:
    import yaml

    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _STR:
                key: Any = key_node.value
            else:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool, date)) and key is not None:
                    key = str(key)  # a list or mapping as a key: keep going, pydantic will reject it
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                # PyYAML would silently keep only the last one, e.g. a second 'overrides:' block.
                duplicates.append(
                    f"{line}: {'.'.join(map(str, loc + (key,)))}: key {key!r} appears twice "
                    f"(also on line {seen[key]}); the first would be silently ignored"
                )
            seen.setdefault(key, line)
            lines[loc + (key,)] = line
            _walk(value_node, loc + (key,), lines, duplicates, constructor)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[loc + (index,)] = item.start_mark.line + 1
            _walk(item, loc + (index,), lines, duplicates, constructor)


def _unconstructible(node: yaml.Node | None) -> yaml.ScalarNode | None:
    """The first scalar PyYAML cannot turn into a value (it does not say which one)."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        try:
            yaml.constructor.SafeConstructor().construct_object(node)
        except ValueError:
            return node
        return None
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        return None
    return next((bad for child in children if (bad := _unconstructible(child)) is not None), None)


MAX_NODES = 200_000  # values in one file once its aliases are expanded; the largest protocol has ~5,000


class _AliasBomb(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` holds once every alias is expanded, counted without expanding them.

    An alias repeats a node already composed (PyYAML shares the node), so 9 levels of 9 aliases
    ("billion laughs") compose instantly but expand to 387 million values: every walk over the data
    (line numbers, validation) would run for minutes and take gigabytes. Memoised per node: linear.
    """
    import yaml

    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            sizes[id(node)] = 1
            continue
        if expanded:
            sizes[id(node)] = min(1 + sum(sizes.get(id(c), 1) for c in children), MAX_NODES + 1)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _parse(text: str, loader_class: type) -> tuple[yaml.Node | None, Any, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) > MAX_NODES:
            raise _AliasBomb
        return node, (loader.construct_document(node) if node is not None else None), loader
    finally:
        loader.dispose()


def _located_parse(path: Path, text: str) -> tuple[yaml.Node | None, Any, Any]:
    import yaml

    node = None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        return _parse(text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: invalid YAML: {exc.problem}"]) from None
    except ValueError as exc:  # PyYAML raises it unmarked for a date that does not exist, e.g. 2026-02-30
        bad = _unconstructible(node)
        where = f"{path}:{bad.start_mark.line + 1}: {bad.value!r}" if bad is not None else str(path)
        raise ConfigError([f"{where}: invalid value: {exc}"]) from None


def load_located(path: Path | str) -> LocatedYaml:
    """Parse a YAML file once, mapping each key path to its line; syntax errors name file and line."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason})"]) from None
    try:
        node, data, constructor = _parse(text, _loader())
    except _AliasBomb:
        raise ConfigError([f"{path}: refused: its aliases (*name) expand to more than {MAX_NODES:,} values "
                           "(a YAML alias bomb?); write the values out instead"]) from None
    except (yaml.YAMLError, ValueError):
        # Parse again with PyYAML's own parser for the error: its wording and marks are the ones we print.
        node, data, constructor = _located_parse(path, text)
    lines: dict[Location, int] = {}
    duplicates: list[str] = []
    if node is not None:
        _walk(node, (), lines, duplicates, constructor)
    if duplicates:
        raise ConfigError([f"{path}:{problem}" for problem in duplicates])
    return LocatedYaml(path=path, data=data if data is not None else {}, lines=lines)


def _model_at(model: type[BaseModel], loc: Location) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for typo suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def located_errors(err: ValidationError, source: LocatedYaml, model: type[BaseModel], base: Location = ()) -> list[str]:
    """Turn a pydantic error into ``file:line: key: message`` lines with near-match hints."""
    problems = []
    for item in err.errors():
        loc = base + tuple(item["loc"])
        line = source.line_of(loc)
        key = ".".join(str(p) for p in loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, tuple(item["loc"]))
            message = f"unknown key {loc[-1]!r}"
            if owner is not None:
                near = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1)
                if near:
                    message += f" — did you mean {near[0]!r}?"
        problems.append(f"{source.path}:{line}: {key}: {message}")
    return problems
