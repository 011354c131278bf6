"""Method configs: typed dataclasses, resolved and validated before anything trains.

Resolution order (later wins): the method's ``Config`` dataclass → its named recipe for the dataset family
(:mod:`ltbench.recipes`) → ``--config FILE.yaml`` → ``--set key=value``. Every value is checked when it is
applied: unknown keys, values of the wrong type and choices outside a ``Literal[...]`` are one-line
:class:`~ltbench.errors.LTBenchError` s that name the valid keys or choices.

Stage settings nest: a config whose fields include ``cls_lr`` has a stage ``cls``, so ``--set cls.lr=0.01`` and
the YAML mapping ``cls: {lr: 0.01}`` both set ``cls_lr``. Backbone arguments live in ``backbone_args``
(``--set backbone_args.binary_weights=false``; YAML ``backbone_args: {binary_weights: false}``) and are
checked against the backbone factory's signature. A YAML file may name a recipe (``recipe: equal-budget``);
``--recipe`` wins over it.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ltbench.errors import LTBenchError

RECIPE_KEY = "recipe"
BACKBONE_ARGS = "backbone_args"


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
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        message = f"config file {path} is not valid YAML ({e})".replace("\n", " ")
        raise LTBenchError(message, "fix its syntax") from None
    if not isinstance(data, dict):
        raise LTBenchError(f"config file {path} is not a mapping", "write it as `key: value` lines")
    return data


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        for c in choices:
            if value == c or (isinstance(value, str) and str(c) == value):
                return c
        raise ValueError(f"{value!r} is not one of {', '.join(map(str, choices))}")
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
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{value!r} is not a mapping")
        return dict(value)
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
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    if tp is str:
        return str(value)
    return value


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return str(tp).replace("typing.", "")


def stage_prefixes(config_cls: type) -> list[str]:
    """Stages of a config: prefixes ``P`` with a ``P_lr`` field (``cls``, ``calib``, ``tta``, ``meta``)."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return sorted({n.split("_", 1)[0] for n in names if "_" in n and n.split("_", 1)[0] + "_lr" in names})


def flatten(data: dict[str, Any], config_cls: type, origin: str) -> dict[str, Any]:
    """YAML mappings / dotted keys → field names: ``cls: {lr: x}`` and ``cls.lr`` → ``cls_lr``;
    ``backbone_args.K`` → one entry of ``backbone_args``."""
    stages = stage_prefixes(config_cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        head, _, rest = key.partition(".")
        if head == BACKBONE_ARGS and (rest or isinstance(value, dict)):
            args = {rest: value} if rest else value
            out.setdefault(BACKBONE_ARGS, {}).update(args)
        elif head in stages and isinstance(value, dict) and not rest:
            for sub, v in value.items():
                out[f"{head}_{sub}"] = v
        elif head in stages and rest:
            out[f"{head}_{rest}"] = value
        elif rest:
            raise LTBenchError(
                f"{origin}: {config_cls.__name__} has no stage {head!r} (key {key!r})",
                f"stages: {', '.join(stages) or 'none'}; backbone arguments go under {BACKBONE_ARGS}.",
            )
        else:
            out[key] = value
    return out


def apply_overrides(cfg: Any, overrides: dict[str, Any], origin: str = "--set") -> Any:
    """A copy of dataclass ``cfg`` with ``overrides`` (flat or nested) applied after type checking."""
    overrides = flatten(overrides, type(cfg), origin)
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
            raise LTBenchError(
                f"{origin}: bad value for {key}: {e}", f"{key} expects {_describe(hints[key])}"
            ) from None
        if key == BACKBONE_ARGS:  # backbone arguments merge
            changes[key] = {**getattr(cfg, key), **changes[key]}
    return dataclasses.replace(cfg, **changes)


def check_choices(cfg: Any, origin: str = "config") -> None:
    """Every ``Literal`` field holds one of its choices (recipes and defaults included)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        tp = hints[f.name]
        if typing.get_origin(tp) is typing.Literal and getattr(cfg, f.name) not in typing.get_args(tp):
            raise LTBenchError(
                f"{origin}: bad value for {f.name}: {getattr(cfg, f.name)!r}",
                f"{f.name} expects {_describe(tp)}",
            )


def check_backbone_args(backbone: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` coerced to the backbone factory's annotated parameters; an unknown one is an error."""
    from ltbench.registry import BACKBONES

    factory = BACKBONES.get(backbone)
    params = inspect.signature(factory).parameters
    hints = typing.get_type_hints(factory)
    valid = [p for p in params if p not in ("num_classes", "in_chans")]
    out = {}
    for key, value in args.items():
        if key not in valid:
            raise LTBenchError(
                f"backbone {backbone} takes no argument {key!r}",
                f"its arguments: {', '.join(valid) or 'none'}",
            )
        try:
            out[key] = _coerce(value, hints.get(key, Any), key)
        except (ValueError, TypeError) as e:
            raise LTBenchError(f"backbone_args.{key}: {e}", f"{key} expects {hints.get(key)}") from None
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def to_yaml(cfg: Any, recipe: str | None = None, header: list[str] = ()) -> str:
    """The config as YAML, stage fields nested under their stage (feeds back through ``--config``)."""
    flat = to_dict(cfg)
    nested: dict[str, Any] = {RECIPE_KEY: recipe} if recipe else {}
    stages = stage_prefixes(type(cfg))
    for key, value in flat.items():
        head = key.split("_", 1)[0]
        if head in stages and "_" in key:
            nested.setdefault(head, {})[key.split("_", 1)[1]] = value
        else:
            nested[key] = value
    body = yaml.safe_dump(nested, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "".join(f"# {line}\n" for line in header) + body


def resolve_config(
    method: Any,
    binary: bool,
    family: str,
    config_file: Path | str | None = None,
    sets: dict[str, Any] | None = None,
    recipe: str | None = None,
    backbone: str | None = None,
) -> Any:
    """The validated config of ``method`` (a registry name or a ``Method`` class) for a backbone kind and
    family: Config → recipe → YAML → ``--set``. Raises ``LTBenchError`` on any bad key or value."""
    from ltbench import recipes
    from ltbench.registry import METHODS

    name, method_cls = _method(method, METHODS)
    data = load_yaml(config_file) if config_file else {}
    file_recipe = data.pop(RECIPE_KEY, None)
    recipe = str(recipe or file_recipe or recipes.default_recipe(binary))
    known = recipes.recipe_names(name)
    if recipe not in known:
        raise LTBenchError(f"unknown recipe {recipe!r} for {name}", f"choose one of: {', '.join(known)}")
    cfg = method_cls.Config()
    for label, layer in recipes.recipe_layers(name, method_cls.Config, recipe, family, binary):
        cfg = apply_overrides(cfg, layer, origin=label)
    if data:
        cfg = apply_overrides(cfg, data, origin=str(config_file))
    if sets:
        cfg = apply_overrides(cfg, sets)
    check_choices(cfg)
    if backbone is not None and getattr(cfg, BACKBONE_ARGS, None):
        cfg = dataclasses.replace(cfg, **{BACKBONE_ARGS: check_backbone_args(backbone, cfg.backbone_args)})
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
    return cfg


def resolved_recipe(method: Any, binary: bool, config_file: Path | str | None, recipe: str | None) -> str:
    """The recipe name a resolution uses: ``--recipe``, else the YAML's ``recipe:``, else the kind's default."""
    from ltbench import recipes

    data = load_yaml(config_file) if config_file else {}
    return str(recipe or data.get(RECIPE_KEY) or recipes.default_recipe(binary))


def _method(method: Any, registry: Any) -> tuple[str, type]:
    if isinstance(method, str):
        return method, registry.get(method)
    for entry in registry.entries():
        if entry.obj is method:
            return entry.name, method
    raise LTBenchError(f"{method!r} is not a registered method", "register it with @METHODS.register(NAME)")
