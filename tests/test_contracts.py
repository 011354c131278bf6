"""Registry-wide contracts: every method × backbone kind × family resolves; every backbone keeps the interface.

Adding a method, backbone or family puts it through these tests with no edit here.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch
from torch import nn

from ltbench.config import resolve_config, stage_prefixes, to_yaml
from ltbench.families import FAMILIES
from ltbench.method import Method, TrainConfig
from ltbench.recipes import recipe_names
from ltbench.registry import BACKBONES, METHODS

BINARY = [e.name for e in BACKBONES.entries() if e.meta.get("binary")]
FLOAT = [e.name for e in BACKBONES.entries() if not e.meta.get("binary")]


@pytest.mark.parametrize("method", METHODS.names())
def test_method_contract(method):
    cls = METHODS.get(method)
    assert issubclass(cls, Method) and issubclass(cls.Config, TrainConfig)
    assert cls.stages and cls.follows, "ltbench methods / the docs table need stages and follows"
    hints = typing.get_type_hints(cls.Config)
    assert all(f.name in hints for f in dataclasses.fields(cls.Config))
    row = cls.Config.ROW_FIELD
    assert row is None or row in {f.name for f in dataclasses.fields(cls.Config)}


@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("backbone", [BINARY[0], FLOAT[0]])
def test_every_method_backbone_kind_family_resolves(method, family, backbone):
    import inspect

    from ltbench.errors import LTBenchError
    from ltbench.recipes import SHARED_RECIPES

    binary = backbone in BINARY
    params = inspect.signature(BACKBONES.get(backbone)).parameters
    for name in recipe_names(method):
        wants = SHARED_RECIPES.get(name, {}).get("backbone_args", {})
        if any(k not in params for k in wants):  # e.g. ReActNet's step recipes on another backbone
            with pytest.raises(LTBenchError):
                resolve_config(method, binary, family, recipe=name, backbone=backbone)
            continue
        cfg = resolve_config(method, binary, family, recipe=name, backbone=backbone)
        assert cfg.epochs >= 1 and cfg.batch_size >= 1
        for stage in stage_prefixes(type(cfg)):
            assert f"{stage}_lr" in dataclasses.asdict(cfg)
        assert to_yaml(cfg, name)  # printable by `ltbench config`
        teacher, teacher_set = getattr(cfg, "teacher", None), getattr(cfg, "teacher_set", ())
        if teacher in METHODS.names():  # a teacher that is another method gets its keys resolved there too
            from ltbench.config import parse_sets

            resolve_config(teacher, binary, family, sets=parse_sets(teacher_set))


def _in_chans_and_size(entry) -> tuple[int, int]:
    size = entry.meta.get("input_size") or 32
    native = [f for f in FAMILIES.values() if f.native_size == size]
    return (native[0].channels if native else 3), min(size, 32)


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_backbone_contract(backbone):
    """num_features, forward_features → (B, F), classifier → (B, C), forward = classifier ∘ forward_features."""
    entry = BACKBONES.entry(backbone)
    import inspect

    kwargs = {"weights": None} if "weights" in inspect.signature(entry.obj).parameters else {}
    chans, size = _in_chans_and_size(entry)
    model = entry.obj(num_classes=5, in_chans=chans, **kwargs).eval()
    assert isinstance(model, nn.Module) and isinstance(model.num_features, int)
    x = torch.randn(2, chans, size, size)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, model.num_features)
        logits = model.classifier(feats)
        assert logits.shape == (2, 5)
        assert torch.allclose(model(x), logits, atol=1e-5)
    assert isinstance(entry.meta.get("binary"), bool) and entry.meta.get("description")


def test_fit_returns_the_model_with_the_records_of_that_fit_only():
    """``fit_with_records`` hands each fit a fresh record sink and returns it: a second fit on the same task
    does not see the first one's records (what ``ltbench run`` and the teacher helper rely on)."""
    from pathlib import Path

    from ltbench.method import Fitted, Task

    class Recording(Method):
        def fit(self, task: Task) -> nn.Module:
            task.records.setdefault("calls", []).append(task.seed)
            return nn.Linear(2, 2)

    task = Task(info=None, backbone="cnn-digits", device=torch.device("cpu"), seed=3, run_dir=Path("."))
    task.records["stale"] = True  # state left on the task by anything before
    first = Recording(TrainConfig()).fit_with_records(task)
    assert isinstance(first, Fitted) and isinstance(first.model, nn.Linear)
    assert first.records == {"calls": [3]}
    second = Recording(TrainConfig()).fit_with_records(task)
    assert second.records == {"calls": [3]} and first.records == {"calls": [3]}
