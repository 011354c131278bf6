"""Method configs: dataclass defaults are the source of truth; recipes, YAML files and ``--set`` override them.

Resolution order (later wins): dataclass defaults → the method's recipe for the backbone kind and dataset
family → ``--config FILE.yaml`` → ``--set key=value``. Unknown keys and values of the wrong type are one-line
errors that list the valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ltbench.errors import LTBenchError


def parse_sets(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise LTBenchError(f"--set {pair!r} is not key=value", "write it as --set lr=0.01")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def load_yaml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise LTBenchError(f"config file {path} does not exist", "check the path given to --config")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise LTBenchError(f"config file {path} is not a mapping", "write it as `key: value` lines")
    return data


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        for a in args:
            try:
                return _coerce(value, a, key)
            except (ValueError, TypeError):
                continue
        raise ValueError(f"{value!r} fits none of {args}")
    if origin in (tuple, list):
        items = (
            value
            if isinstance(value, (list, tuple))
            else [v for v in str(value).strip("()[]").split(",") if v]
        )
        (inner, *_) = typing.get_args(tp) or (str,)
        seq = [_coerce(v, inner, key) for v in items]
        return tuple(seq) if origin is tuple else seq
    if tp is bool:
        if isinstance(value, bool):
            return value
        s = str(value).lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if tp is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if tp is float:
        return float(value)
    if tp is str:
        return str(value)
    return value


def apply_overrides(cfg: Any, overrides: dict[str, Any], origin: str = "--set") -> Any:
    """A copy of dataclass ``cfg`` with ``overrides`` applied after type checking."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise LTBenchError(
                f"{origin}: {type(cfg).__name__} has no key {key!r}",
                f"valid keys: {', '.join(sorted(fields))}",
            )
        try:
            changes[key] = _coerce(value, hints[key], key)
        except (ValueError, TypeError) as e:
            raise LTBenchError(f"{origin}: bad value for {key}: {e}", f"{key} expects {hints[key]}") from None
    return dataclasses.replace(cfg, **changes)


def resolve_config(method_cls: Any, binary: bool, family: str, config_file=None, sets=None) -> Any:
    """``method_cls.Config`` with, in order, its recipe for (backbone kind, family), a YAML file, ``--set``s."""
    cfg = apply_overrides(method_cls.Config(), method_cls.recipe(binary, family), origin="recipe")
    if config_file:
        cfg = apply_overrides(cfg, load_yaml(config_file), origin=str(config_file))
    if sets:
        cfg = apply_overrides(cfg, sets)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
