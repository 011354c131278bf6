"""Config resolution: recipes, YAML and --set with type checking."""

from __future__ import annotations

import pytest
from ltbench.baselines.ce import CE

from ltbench.config import apply_overrides, parse_sets
from ltbench.errors import LTBenchError
from ltbench.method import TrainConfig
from ltbench.run import resolve_config


def test_set_coerces_types():
    cfg = apply_overrides(
        TrainConfig(),
        parse_sets(["epochs=3", "lr=1e-3", "nesterov=true", "milestones=5,8", "grad_clip=none"]),
    )
    assert cfg.epochs == 3 and cfg.lr == 1e-3 and cfg.nesterov is True and cfg.milestones == (5, 8)
    assert cfg.grad_clip is None


@pytest.mark.parametrize("pair", ["epochs=1.5", "nesterov=maybe", "lr=fast"])
def test_bad_values_raise(pair):
    with pytest.raises(LTBenchError):
        apply_overrides(TrainConfig(), parse_sets([pair]))


def test_unknown_key_lists_valid_keys():
    with pytest.raises(LTBenchError) as e:
        apply_overrides(TrainConfig(), {"epoch": 3})
    assert "epochs" in e.value.fix


def test_resolution_order(tmp_path):
    yml = tmp_path / "c.yaml"
    yml.write_text("lr: 0.5\nepochs: 7\n")
    cfg = resolve_config(CE, binary=False, family="small", config_file=yml, sets={"epochs": "9"})
    assert cfg.optimizer == "sgd" and cfg.milestones == (160, 180)  # official recipe
    assert cfg.lr == 0.5 and cfg.epochs == 9  # YAML, then --set
