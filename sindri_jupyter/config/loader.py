"""Read sindri.yaml into ``SindriConfig`` without changing what the user wrote.

YAML's implicit typing is the trap this module exists for: ``version: 3.10``
would become the float 3.1 and ``name: no`` the boolean False. So the file is
composed to nodes, not loaded, and each scalar is converted by the type of the
model field it lands in: a text field keeps the characters as written, a number
field takes only a plain number, a boolean only ``true`` or ``false``. Quoted
text never becomes a number. Problems are collected, not raised one at a time,
and each is reported as ``FILE:LINE:COL: key: message`` with a hint.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ValidationError

from sindri_jupyter.config.models import RETIRED_VALUES, Providers, SindriConfig
from sindri_jupyter.errors import ConfigError

_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE, _FALSE = {"true", "True", "TRUE"}, {"false", "False", "FALSE"}
_YAML11_BOOL = {"yes", "no", "on", "off", "y", "n"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEY = re.compile(r"token|api_?key|secret|password|passwd", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"^(rpa_[A-Za-z0-9]{16,}|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*|nf-[A-Za-z0-9-]{20,})$"
)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


Pos = tuple[int, int]


class _Reader:
    """One pass over the node tree: convert, normalise keys, collect problems."""

    def __init__(self, filename: str, env: Mapping[str, str]):
        self.filename = filename
        self.env = env
        self.problems: list[str] = []
        self.problem_paths: set[tuple] = set()
        self.positions: dict[tuple, Pos] = {}

    def problem(self, node: yaml.Node, path: tuple, message: str) -> None:
        self.problem_paths.add(path)
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        key = ".".join(str(p) for p in path) or "(top level)"
        self.problems.append(f"{self.filename}:{line}:{col}: {key}: {message}")

    def read(self, node: yaml.Node, annotation: Any, path: tuple) -> Any:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        annotation, optional = _unwrap_optional(annotation)
        if isinstance(node, yaml.ScalarNode) and optional and _is_null(node):
            return None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.read_model(node, annotation, path)
        origin = typing.get_origin(annotation)
        if origin in (dict, Mapping):
            return self.read_dict(node, typing.get_args(annotation)[1], path)
        if origin is list:
            return self.read_list(node, typing.get_args(annotation)[0], path)
        return self.read_scalar(node, annotation, path)

    def read_model(self, node: yaml.Node, model: type[BaseModel], path: tuple):
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping of keys, found {_what(node)}")
            return None
        fields = model.model_fields
        aliases = {_camel(name): name for name in fields if _camel(name) != name}
        out: dict[str, Any] = {}
        for key_node, value_node in self.pairs(node, path):
            key = aliases.get(key_node.value, key_node.value)
            if key not in fields:
                retired = model.RETIRED.get(_snake(key)) if hasattr(model, "RETIRED") else None
                if retired:
                    self.problem(key_node, path + (key,), f"'{key}' is retired: {retired}")
                    continue
                if model is Providers and _is_plugin_provider(key):
                    out[key] = self.read(value_node, dict[str, Any], path + (key,))
                    continue
                self.unknown_key(key_node, key, sorted(fields), path)
                continue
            value = self.read(value_node, fields[key].annotation, path + (key,))
            out[key] = value
        return out

    def unknown_key(self, node: yaml.Node, key: str, allowed: list[str], path):
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "allowed here: " + ", ".join(allowed)
        self.problem(node, path + (key,), f"unknown key '{key}'; {hint}")

    def pairs(self, node: yaml.MappingNode, path: tuple):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "keys must be plain text")
                continue
            if key_node.value in seen:
                self.problem(key_node, path + (key_node.value,), "key given twice")
                continue
            seen.add(key_node.value)
            yield key_node, value_node

    def read_dict(self, node: yaml.Node, value_type: Any, path: tuple):
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping, found {_what(node)}")
            return None
        return {
            k.value: self.read(v, value_type, path + (k.value,))
            for k, v in self.pairs(node, path)
        }

    def read_list(self, node: yaml.Node, item_type: Any, path: tuple):
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, f"expected a list, found {_what(node)}")
            return None
        return [self.read(item, item_type, path + (i,)) for i, item in enumerate(node.value)]

    def read_scalar(self, node: yaml.Node, annotation: Any, path: tuple):
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, path, f"expected a single value, found {_what(node)}")
            return None
        text = self.expand(node, path)
        if text is None:
            return None
        expanded = text != node.value
        # A value that came from ${VAR} is typed by its field, whatever the quotes.
        quoted = node.style in ("'", '"', "|", ">") and not expanded
        self.refuse_secret(node, path, text, expanded=expanded)
        return self.convert(node, path, text, quoted, annotation)

    def convert(self, node, path, text: str, quoted: bool, annotation: Any):
        if annotation is Any:
            return text if quoted else yaml.safe_load(text) if text else None
        if typing.get_origin(annotation) is Literal:
            allowed = [str(a) for a in typing.get_args(annotation)]
            if text.upper() in RETIRED_VALUES:
                self.problem(node, path, f"'{text}' is retired: {RETIRED_VALUES[text.upper()]}")
            elif text not in allowed:
                self.problem(node, path, f"'{text}' is not allowed; use one of: "
                             + ", ".join(allowed))
            return text
        if annotation is str:
            return text
        if quoted:
            self.problem(node, path, f"expected {_type_word(annotation)}, found the "
                         f"quoted text '{text}'; remove the quotes if a number is meant")
            return None
        if annotation is bool:
            return self.to_bool(node, path, text)
        if annotation is int and _INT.match(text):
            return int(text.replace("_", ""), 0)
        if annotation is float and (_INT.match(text) or _FLOAT.match(text)):
            return float(text.replace("_", ""))
        self.problem(node, path, f"expected {_type_word(annotation)}, found '{text}'")
        return None

    def to_bool(self, node, path, text: str):
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        if text.lower() in _YAML11_BOOL:
            self.problem(node, path, f"'{text}' is ambiguous (YAML 1.1 reads it as a "
                         "boolean, YAML 1.2 as text); write true or false")
        else:
            self.problem(node, path, f"expected true or false, found '{text}'")
        return None

    def expand(self, node: yaml.ScalarNode, path: tuple) -> str | None:
        missing: list[str] = []

        def one(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            missing.append(name)
            return ""

        text = _VAR.sub(one, node.value)
        for name in missing:
            self.problem(node, path, f"environment variable {name} is not set; "
                         f"export {name}=... or write ${{{name}:-default}}")
        return None if missing else text

    def refuse_secret(self, node, path, text: str, *, expanded: bool) -> None:
        if expanded or not text:
            return
        key = str(path[-1]) if path else ""
        if _SECRET_VALUE.match(text) or (_SECRET_KEY.search(key) and "${" not in text):
            var = key if re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) else "VARIABLE"
            self.problem(node, path, "a literal secret is not allowed in the file; "
                         f"put it in the environment and write ${{{var}}}")


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_null(node: yaml.ScalarNode) -> bool:
    return node.style is None and node.value in _NULL


def _what(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"'{node.value}'"


def _type_word(annotation: Any) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _is_plugin_provider(name: str) -> bool:
    from sindri_jupyter.core.provider import available

    return name in available()


def loads(text: str, filename: str = "<string>",
          env: Mapping[str, str] | None = None) -> SindriConfig:
    """Parse the text of a sindri.yaml; raise ConfigError listing every problem."""
    reader = _Reader(filename, os.environ if env is None else env)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        hint = "check indentation and quoting near that line"
        line = text.splitlines()[mark.line] if mark and mark.line < len(
            text.splitlines()) else ""
        if "${" in line and ("{" in line.split("${")[0] or "[" in line.split("${")[0]):
            hint = 'inside {...} or [...] quote a variable: write "${VAR}"'
        raise ConfigError([f"{where}: YAML syntax: {exc.problem}"], hint=hint) from exc
    if root is None:
        raise ConfigError([f"{filename}:1:1: the file is empty"],
                          hint="start from the example in the README")
    data = reader.read(root, SindriConfig, ())
    _check_provider(reader, root, data)
    try:
        config = SindriConfig.model_validate(data)
    except ValidationError as exc:
        reader.problems += _from_pydantic(exc, reader, filename)
    if reader.problems:
        raise ConfigError(sorted(reader.problems, key=_line_order), hint=_HINT)
    return config


def _line_order(problem: str) -> tuple[int, int]:
    match = re.search(r":(\d+):(\d+): ", problem)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


_HINT = "run `sindri config schema` for every key, its type and its unit"


def _check_provider(reader: _Reader, root: yaml.Node, data: Any) -> None:
    from sindri_jupyter.core.provider import available

    provider = (data or {}).get("deployment", {}) or {}
    name = provider.get("provider") if isinstance(provider, dict) else None
    if name is not None and name not in available():
        line, col = reader.positions.get(("deployment", "provider"), (1, 1))
        close = difflib.get_close_matches(name, available(), n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        reader.problems.append(
            f"{reader.filename}:{line}:{col}: deployment.provider: unknown provider "
            f"'{name}'; {guess}use one of: " + ", ".join(available())
        )


def _from_pydantic(exc: ValidationError, reader: _Reader, filename: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        if any(loc[:len(seen)] == seen for seen in reader.problem_paths):
            continue  # already reported, more precisely, while reading
        while loc and loc not in reader.positions:
            loc = loc[:-1]
        line, col = reader.positions.get(loc, (1, 1))
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "this key is required"
        problems.append(f"{filename}:{line}:{col}: {key}: {message}")
    return problems


def load(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> SindriConfig:
    """Read and validate a sindri.yaml file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file"],
                          hint="pass -f FILE, or run in the folder that has sindri.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot read: {exc}"]) from exc
    return loads(text, str(file), env)
