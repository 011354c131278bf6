"""``ltbench run --log jsonl|tensorboard|wandb``: every epoch, the resolved config, the result and the plots.

One 2-epoch CE run on digits-LT logs to every tracker installed (jsonl always; tensorboard and wandb when the
``[log]`` extra is); each test reads back what its tracker wrote. wandb runs offline (no login here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cifar_fixtures import run_cli  # noqa: E402

from ltbench.recipes import DIGITS  # noqa: E402

RUN = {"method": "ce", "dataset": "digits-lt10", "backbone": "cnn-digits", "seed": 0}
EPOCHS = 2


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def logged(digits_data, tmp_path_factory):
    """(results dir, the run's log folder, result JSON, the trainer's own per-epoch log lines)."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")  # no ~/.netrc: wandb has no login, so it runs offline
    mp.setenv("HOME", str(home))
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        mp.delenv(var, raising=False)
    mp.setenv("WANDB_SILENT", "true")
    res = tmp_path_factory.mktemp("results")
    logs = ["jsonl"] + [k for k, m in (("tensorboard", "tensorboard"), ("wandb", "wandb")) if installed(m)]
    args = ["run", "--method", "ce", "--dataset", "digits-lt10", "--data", digits_data, "--results", res]
    args += ["--epochs", EPOCHS, "--backbone", "cnn-digits", "--device", "cpu"]
    capsys = _Capture()
    code, _, err = run_cli([*args, *(x for k in logs for x in ("--log", k))], capsys)
    mp.undo()
    assert code == 0, err
    result = json.loads((res / "digits-lt10" / "ce" / "cnn-digits" / "seed0.json").read_text())
    trainer_log = res / ".runs" / "digits-lt10" / "ce" / "cnn-digits" / "seed0.log"
    epochs = [json.loads(line) for line in trainer_log.read_text().splitlines()]
    return res, res / "logs" / "digits-lt10" / "ce" / "cnn-digits" / "seed0", result, epochs


class _Capture:
    """The part of pytest's capsys run_cli uses, for a module-scoped fixture (output goes to the terminal)."""

    def readouterr(self):
        return "", ""


def test_jsonl_holds_each_epoch_the_config_the_result_and_the_plots(logged):
    res, folder, result, epochs = logged
    lines = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    events = [x["event"] for x in lines]
    plots = [x for x in lines if x["event"] == "plot"]
    assert events == ["start", "epoch", "epoch", "config", "result", *["plot"] * len(plots), "end"]
    assert lines[0] == {"event": "start", **RUN}
    # every epoch as the trainer recorded it (its own log file), stage by stage
    assert [x for x in lines if x["event"] == "epoch"] == [{"event": "epoch", **e} for e in epochs]
    assert [e["epoch"] for e in epochs] == [1, 2] and {e["stage"] for e in epochs} == {"ce"}
    config = lines[3]
    assert config == {"event": "config", "config": result["config"], "config_hash": result["config_hash"]}
    assert config["config"]["epochs"] == EPOCHS
    assert config["config"]["lr"] == DIGITS["lr"]  # ce's digits recipe
    path = res / "digits-lt10" / "ce" / "cnn-digits" / "seed0.json"
    assert lines[4] == {
        "event": "result",
        "dataset": "digits-lt10",
        "row": "ce",
        "backbone": "cnn-digits",
        "seed": 0,
        "metrics": result["metrics"],
        "grouping": result["grouping"],
        "timings": result["timings"],
        "inference": result["inference"],
        "path": str(path),
    }
    # the per-class heatmap and the group bars of this run (no weight norms or λ: CE records neither)
    assert sorted(p["name"] for p in plots) == ["groups-digits-lt10"] * 2 + ["per-class-digits-lt10"] * 2
    assert all(Path(p["path"]).is_file() and Path(p["path"]).parent == folder / "plots" for p in plots)


@pytest.mark.skipif(not installed("tensorboard"), reason="tensorboard not installed (the [log] extra)")
def test_tensorboard_event_files(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, folder, result, epochs = logged
    acc = EventAccumulator(str(folder / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    loss = acc.Scalars("ce/loss")
    assert [(s.step, s.value) for s in loss] == [(e["epoch"], pytest.approx(e["loss"])) for e in epochs]
    assert acc.Scalars("result/avg")[0].value == pytest.approx(result["metrics"]["avg"])
    images = acc.Tags()["images"]
    assert images and all(t.startswith("plots/") for t in images)
    text = {t: acc.Tensors(t)[0].tensor_proto.string_val[0].decode() for t in acc.Tags()["tensors"]}
    assert json.loads(text["config/text_summary"].strip("`\n")) == result["config"]


@pytest.mark.skipif(not installed("wandb"), reason="wandb not installed (the [log] extra)")
def test_wandb_offline_run(logged):
    _, folder, result, _ = logged
    runs = list((folder / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # offline: nothing left the machine, `wandb sync` uploads it later
    data = b"".join(p.read_bytes() for p in runs[0].glob("*.wandb"))
    for key in (b"ce/loss", b"ce/lr", b"result/avg", b"config_hash", b"plots/groups-digits-lt10"):
        assert key in data
    assert result["config_hash"].encode() in data


def test_wandb_mode(tmp_path, monkeypatch):
    from ltbench.trackers import wandb_mode

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert wandb_mode() == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


@pytest.mark.parametrize(("kind", "module"), [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_missing_package_is_one_line_before_training(
    kind, module, digits_data, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, module, None)  # `import` raises ImportError
    args = ["run", "--method", "ce", "--dataset", "digits-lt10", "--data", digits_data, "--results", tmp_path]
    code, _, err = run_cli([*args, "--backbone", "cnn-digits", "--log", kind], capsys)
    assert code == 2 and f"--log {kind} needs the" in err and "ltbench[log]" in err and err.count("\n") == 1
    assert not list(tmp_path.rglob("*.json"))  # nothing trained
