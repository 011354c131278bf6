"""Shared stages (:mod:`ltbench.stage_store`): a decoupled method's stage 1 trained by another run is loaded, not
retrained, and the result is the one an unshared run gives; a different config, seed or RNG state is a different
stage; one process at a time trains a key."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ltbench.baselines.decoupling import stage1_config

from ltbench.config import resolve_config
from ltbench.method import TrainConfig
from ltbench.run import run_one
from ltbench.seeding import seed_everything
from ltbench.stage_store import claim, stage_key
from ltbench.trainer import training_fields

BACKBONE = "cnn-digits"


def _run(method: str, digits_data: Path, results: Path, share: bool = True, seed: int = 0, **sets) -> dict:
    path = run_one(
        method,
        "digits-lt10",
        backbone=BACKBONE,
        seed=seed,
        sets={k: str(v) for k, v in sets.items()},
        data_root=digits_data,
        results=results,
        device="cpu",
        share_stages=share,
    )
    return json.loads(path.read_text())


def _trained_stages(results: Path, method: str, seed: int = 0) -> list[str]:
    """The stages whose epochs ran in this run (the Trainer logs one line per trained epoch)."""
    log = results / ".runs" / "digits-lt10" / method / BACKBONE / f"seed{seed}.log"
    return [json.loads(line)["stage"] for line in log.read_text().splitlines()] if log.exists() else []


def _same_result(a: dict, b: dict) -> None:
    assert a["metrics"] == b["metrics"] and a["per_class_accuracy"] == b["per_class_accuracy"]
    assert a["records"]["stages"] == b["records"]["stages"]


def test_lws_loads_crts_stage1_and_gets_the_unshared_result(digits_data, tmp_path):
    alone = _run("lws", digits_data, tmp_path / "alone", share=False, epochs=2, cls_epochs=1)
    shared = tmp_path / "shared"
    _run("crt", digits_data, shared, epochs=2, cls_epochs=1)
    lws = _run("lws", digits_data, shared, epochs=2, cls_epochs=1)
    assert _trained_stages(shared, "crt") == ["stage1", "stage1", "crt"]
    assert _trained_stages(shared, "lws") == ["lws"]  # stage 1 loaded from crt's run, not retrained
    assert len(list((shared / ".stages").glob("*.ckpt"))) == 1
    assert not (tmp_path / "alone" / ".stages").exists()  # --no-share-stages stores nothing
    _same_result(lws, alone)
    assert lws["records"]["lws_scales"] == alone["records"]["lws_scales"]


def test_a_different_stage1_config_or_seed_is_trained_again(digits_data, tmp_path):
    _run("crt", digits_data, tmp_path, epochs=1, cls_epochs=1)
    _run("lws", digits_data, tmp_path, epochs=2, cls_epochs=1)  # another stage-1 length
    _run("tau_norm", digits_data, tmp_path, seed=1, epochs=1)  # another seed
    assert _trained_stages(tmp_path, "lws") == ["stage1", "stage1", "lws"]
    assert _trained_stages(tmp_path, "tau_norm", seed=1) == ["stage1"]
    assert len(list((tmp_path / ".stages").glob("*.ckpt"))) == 3


def _task(seed: int = 0) -> SimpleNamespace:
    info = SimpleNamespace(manifest={"splits": {"train": 403}}, name="digits-lt10")
    return SimpleNamespace(
        device=torch.device("cpu"), info=info, backbone=BACKBONE, backbone_kwargs={}, seed=seed
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda: torch.manual_seed(1),  # model initialisation draws from these states
        lambda: random.seed(1),
        lambda: np.random.seed(1),
    ],
)
def test_the_key_covers_the_rng_states(change):
    def key():
        return stage_key(_task(), "stage1", {"lr": 0.005}, view="train")

    seed_everything(0)
    before = key()
    assert key() == before  # computing it draws nothing
    change()
    assert key() != before


def test_the_key_covers_config_seed_stage_and_view():
    torch.manual_seed(0)
    base = stage_key(_task(), "stage1", {"lr": 0.005}, view="train")
    others = [
        stage_key(_task(), "stage1", {"lr": 0.01}, view="train"),
        stage_key(_task(seed=1), "stage1", {"lr": 0.005}, view="train"),
        stage_key(_task(), "dive_teacher", {"lr": 0.005}, view="train"),
        stage_key(_task(), "stage1", {"lr": 0.005}, view="train + AutoAugment"),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_one_process_at_a_time_holds_a_key(tmp_path):
    path = tmp_path / "k.ckpt"
    # a second open file description stands for another process
    with claim(path), open(path.with_suffix(".lock"), "a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(path.with_suffix(".lock"), "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the block ends


def test_fields_the_schedule_ignores_do_not_split_a_key():
    # lr_factor reads warmup_start only during a warm-up, milestones/gamma only under multistep
    plain = TrainConfig(schedule="cosine")
    assert training_fields(dataclasses.replace(plain, warmup_start=0.5, milestones=(3,))) == training_fields(
        plain
    )
    warm = dataclasses.replace(plain, warmup_epochs=1.0)
    assert training_fields(dataclasses.replace(warm, warmup_start=0.5)) != training_fields(warm)
    step = dataclasses.replace(plain, schedule="multistep", milestones=(3,))
    assert training_fields(dataclasses.replace(step, gamma=0.5)) != training_fields(step)


def test_the_demo_trains_one_stage1_for_crt_lws_tau_norm_and_balms():
    # the binary digits recipes give these four one stage 1 (BALMS differs only in warmup_start, unused)
    s1 = {
        m: training_fields(
            stage1_config(resolve_config(m, True, "digits", None, None, None, "reactnet-a-tiny"))
        )
        for m in ("crt", "lws", "tau_norm", "balms")
    }
    assert all(f == s1["crt"] for f in s1.values())


def test_the_key_covers_the_code(tmp_path, monkeypatch):
    from ltbench import stage_store

    pkg = tmp_path / "fake_methods"
    (pkg / "kernels").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "kernels" / "k.c").write_text("int f(void) { return 1; }\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(stage_store, "PACKAGES", ("fake_methods",))
    stage_store.code_fingerprint.cache_clear()
    try:
        before = stage_store.code_fingerprint()
        (pkg / "notes.txt").write_text("not code")
        stage_store.code_fingerprint.cache_clear()
        assert stage_store.code_fingerprint() == before
        (pkg / "kernels" / "k.c").write_text("int f(void) { return 2; }\n")  # a kernel edit is a code change
        stage_store.code_fingerprint.cache_clear()
        assert stage_store.code_fingerprint() != before
    finally:
        stage_store.code_fingerprint.cache_clear()


@pytest.mark.parametrize(("flag", "stored"), [((), 1), (("--no-share-stages",), 0)])
def test_ltbench_run_shares_stages_unless_told_not_to(flag, stored, digits_data, tmp_path):
    import subprocess
    import sys

    args = [
        "run",
        "--method",
        "tau_norm",
        "--dataset",
        "digits-lt10",
        "--backbone",
        BACKBONE,
        "--epochs",
        "1",
    ]
    args += ["--device", "cpu", "--data", str(digits_data), "--results", str(tmp_path)]
    r = subprocess.run([sys.executable, "-m", "ltbench", *args, *flag], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.glob(".stages/*.ckpt"))) == stored


def test_dives_balms_teacher_is_the_balms_rows_model_and_loads_its_stage1(digits_data, tmp_path):
    # CANDLE's protocol: DiVE's teacher is BALMS's own model in the same setting (its own recipe, same seed)
    balms = _run("balms", digits_data, tmp_path, epochs=2, cls_epochs=1)
    dive = _run("dive", digits_data, tmp_path, epochs=1, teacher_set="epochs=2,cls_epochs=1")
    assert len(list((tmp_path / ".stages").glob("*.ckpt"))) == 1  # the teacher's stage 1 was loaded
    teacher = dive["records"]["dive_teacher"]
    groups = ("avg", "head", "medium", "tail")
    assert {k: teacher[k] for k in groups} == {k: balms["metrics"][k] for k in groups}


def test_the_demos_dive_teacher_takes_balms_own_digits_recipe():
    for binary, backbone in ((True, "reactnet-a-tiny"), (False, "cnn-digits")):
        assert resolve_config("dive", binary, "digits", None, None, None, backbone).teacher_set == ()
