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


# --- typed, validated resolution (issue 15 point 2) -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "pair", "field"),
    [
        ("mislas", "las_kind=x", "las_kind"),
        ("crt", "cls_sampler=x", "cls_sampler"),
        ("crt", "cls.sampler=x", "cls_sampler"),
        ("ce", "optimizer=adagrad", "optimizer"),
        ("candle", "variant=cd+x", "variant"),
        ("ldam_drw", "loss=hinge", "loss"),
        ("dive", "teacher=ce", "teacher"),
    ],
)
def test_bad_choice_is_one_line_error_at_resolve(method, pair, field):
    with pytest.raises(LTBenchError) as e:
        resolve_config(method, True, "digits", sets=parse_sets([pair]))
    assert field in str(e.value) and "\n" not in str(e.value)


def test_bad_choice_fails_before_any_training(digits_data, tmp_path, monkeypatch):
    """`ltbench run --set las_kind=x` exits 2 before stage 1 (it used to fail after stage 1 had trained)."""
    from ltbench.baselines.mislas import MiSLAS

    from ltbench.run import run_one

    def boom(self, task):  # pragma: no cover - reaching fit is the failure
        raise AssertionError("fit ran")

    monkeypatch.setattr(MiSLAS, "fit", boom)
    with pytest.raises(LTBenchError):
        run_one("mislas", "digits-lt10", sets={"las_kind": "x"}, data_root=digits_data, results=tmp_path)
    assert not (tmp_path / ".runs").exists()


def test_cli_bad_choice_exits_2(tmp_path):
    from ltbench.cli import main

    with pytest.raises(SystemExit) as e:
        import sys

        sys.argv = [
            "ltbench",
            "config",
            "--method",
            "crt",
            "--dataset",
            "cifar10-lt100",
            "--set",
            "cls_sampler=x",
        ]
        main()
    assert e.value.code == 2


def test_nested_stage_settings():
    flat = resolve_config("crt", False, "small", sets={"cls_lr": "0.03"})
    dotted = resolve_config("crt", False, "small", sets={"cls.lr": "0.03"})
    assert flat == dotted and dotted.cls_lr == 0.03
    with pytest.raises(LTBenchError):
        resolve_config("ce", False, "small", sets={"cls.lr": "0.03"})  # ce has no stage cls


def test_nested_yaml_and_recipe_key(tmp_path):
    yml = tmp_path / "c.yaml"
    yml.write_text("recipe: equal-budget\ncls:\n  lr: 0.02\n")
    cfg = resolve_config("crt", True, "small", config_file=yml)
    assert (cfg.epochs, cfg.batch_size, cfg.cls_lr) == (400, 256, 0.02)


def test_unknown_yaml_key_is_an_error(tmp_path):
    yml = tmp_path / "c.yaml"
    yml.write_text("epoch: 3\n")
    with pytest.raises(LTBenchError) as e:
        resolve_config("ce", False, "small", config_file=yml)
    assert "epoch" in str(e.value) and "epochs" in e.value.fix


def test_backbone_args_checked_against_the_factory():
    cfg = resolve_config(
        "ce", True, "small", sets={"backbone_args.binary_weights": "false"}, backbone="reactnet-a"
    )
    assert cfg.backbone_args == {"binary_weights": False}
    with pytest.raises(LTBenchError):
        resolve_config("ce", True, "small", sets={"backbone_args.depth": "3"}, backbone="reactnet-a")
    with pytest.raises(LTBenchError):
        resolve_config(
            "ce", True, "small", sets={"backbone_args.binary_weights": "maybe"}, backbone="reactnet-a"
        )


def test_reactnet_step1_trains_real_weights():
    """configs/reactnet-step1.yaml: binary activations with real weights; step 2: binary weights."""
    import torch

    from ltbench.backbones import create_backbone
    from ltbench.binary.layers import BinaryConv2d
    from ltbench.run import backbone_kwargs

    for name, binary_weights in (("reactnet-step1", False), ("reactnet-step2", True)):
        cfg = resolve_config(
            "ce", True, "digits", config_file=f"configs/{name}.yaml", backbone="reactnet-a-tiny"
        )
        model = create_backbone("reactnet-a-tiny", 10, 1, **backbone_kwargs(cfg, "reactnet-a-tiny"))
        convs = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
        assert convs and all(c.binary_weights is binary_weights for c in convs)
        w = convs[0]
        with torch.no_grad():
            w.weight.copy_(torch.linspace(-1, 1, w.weight.numel()).view_as(w.weight))
        real = torch.equal(w.effective_weight(), w.weight)
        assert real is (not binary_weights)
        assert cfg.schedule == "linear" and cfg.lr == 5e-4


@pytest.mark.parametrize(
    ("method", "dataset", "backbone", "sets"),
    [
        ("mislas", "cifar100-lt100", None, ["cls.lr=0.05"]),
        ("candle", "digits-lt10", None, ["variant=cd"]),
        ("crt", "imagenet-lt", "resnet32", []),
        ("ce", "cub200-lt10", "reactnet-a", ["backbone_args.binary_weights=false", "milestones=3,4"]),
        ("tade", "places-lt", None, []),
    ],
)
def test_config_command_round_trips(method, dataset, backbone, sets, tmp_path):
    """`ltbench config` prints YAML that resolves, fed back with --config, to the same config; no data needed."""
    from click.testing import CliRunner

    from ltbench.cli import cli
    from ltbench.families import family_of_dataset

    args = ["config", "--method", method, "--dataset", dataset, "--data", str(tmp_path / "none")]
    args += ["--backbone", backbone] if backbone else []
    for s in sets:
        args += ["--set", s]
    out = CliRunner().invoke(cli, args, catch_exceptions=False).output
    yml = tmp_path / "c.yaml"
    yml.write_text(out)
    back = ["config", "--method", method, "--dataset", dataset, "--config", str(yml)]
    back += ["--backbone", backbone] if backbone else []
    assert CliRunner().invoke(cli, back, catch_exceptions=False).output == out
    from ltbench.backbones import is_binary
    from ltbench.families import get_family

    _, family = family_of_dataset(dataset)
    bb = backbone or get_family(family).default_backbone
    direct = resolve_config(method, is_binary(bb), family, sets=parse_sets(sets), backbone=bb)
    assert resolve_config(method, is_binary(bb), family, config_file=yml, backbone=bb) == direct


def test_recipe_option_wins_over_yaml_recipe_and_unknown_recipe_errors(tmp_path):
    yml = tmp_path / "c.yaml"
    yml.write_text("recipe: equal-budget\n")
    assert resolve_config("ce", True, "small", config_file=yml).epochs == 400
    assert resolve_config("ce", True, "small", config_file=yml, recipe="binary").epochs == 200
    with pytest.raises(LTBenchError):
        resolve_config("ce", True, "small", recipe="fast")


def test_teacher_weights_option_sets_candles_field_and_is_refused_without_a_teacher():
    import subprocess
    import sys

    def config(method: str) -> subprocess.CompletedProcess:
        args = ["config", "--method", method, "--dataset", "cub200-lt10", "--teacher-weights", "w.pt"]
        return subprocess.run([sys.executable, "-m", "ltbench", *args], capture_output=True, text=True)

    r = config("candle")
    assert r.returncode == 0 and "teacher_weights: w.pt" in r.stdout
    r = config("ce")
    assert r.returncode == 2 and "teacher_weights" in r.stderr and len(r.stderr.strip().splitlines()) == 1
