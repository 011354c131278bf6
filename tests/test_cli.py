"""The CLI contract: fast help, one-line errors with exit code 2, run → result JSON → leaderboard."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import ltbench


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ltbench", *args], capture_output=True, text=True, cwd=cwd)


def test_help_and_version_do_not_import_torch():
    code = "import sys; from ltbench.cli import cli; assert 'torch' not in sys.modules and 'datasets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    r = cli("--version")
    assert r.returncode == 0 and ltbench.__version__ in r.stdout
    r = cli("--help")
    assert r.returncode == 0 and "build" in r.stdout and "run" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("build", "nosuchset", "--ir", "10"), "unknown dataset 'nosuchset'"),
        (("build", "digits", "--ir", "7"), "imbalance ratio 7 is not a standard one"),
        (("build", "digits"), "needs an imbalance ratio"),
        (("run", "--method", "nosuch", "--dataset", "digits-lt10"), "unknown method 'nosuch'"),
        (("run", "--method", "ce", "--dataset", "digits-lt100"), "is not built"),
        (("run", "--method", "ce", "--dataset", "digits-lt10", "--set", "nokey=1"), "has no key 'nokey'"),
        (
            ("run", "--method", "ce", "--dataset", "digits-lt10", "--set", "epochs=abc"),
            "bad value for epochs",
        ),
        (("run", "--method", "ce", "--dataset", "digits-lt10", "--set", "epochs"), "is not key=value"),
        (("run", "--method", "ce"), "no dataset given"),
        (("leaderboard", "--results", "nothing-here"), "no result files"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, digits_data, args, needle):
    (tmp_path / "data").symlink_to(digits_data)
    (tmp_path / "data_lt10_only").mkdir()
    if "digits-lt100" in args:
        args = (*args, "--data", "data_lt10_only")
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert " — " in lines[0]  # says how to fix it
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "data",
        "data_lt10_only",
    ]


def test_build_refuses_to_overwrite_without_force(tmp_path):
    assert cli("build", "digits", "--ir", "10", "--out", str(tmp_path)).returncode == 0
    before = (tmp_path / "digits-lt10" / "manifest.json").read_bytes()
    r = cli("build", "digits", "--ir", "10", "--out", str(tmp_path))
    assert r.returncode == 2 and "--force" in r.stderr
    r = cli("build", "digits", "--ir", "10", "--out", str(tmp_path), "--force")
    assert r.returncode == 0 and (tmp_path / "digits-lt10" / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-lt10"]  # no temp dirs left


def test_run_writes_result_json_and_leaderboard(tmp_path, digits_data):
    res = tmp_path / "results"
    r = cli(
        "run",
        "--method",
        "ce",
        "--dataset",
        "digits-lt10",
        "--backbone",
        "cnn-digits",
        "--set",
        "epochs=2",
        "--data",
        str(digits_data),
        "--results",
        str(res),
    )
    assert r.returncode == 0, r.stderr
    path = res / "digits-lt10" / "ce" / "cnn-digits" / "seed0.json"
    data = json.loads(path.read_text())
    for key in (
        "schema_version",
        "dataset",
        "method",
        "backbone",
        "seed",
        "config",
        "per_class_accuracy",
        "train_counts",
        "metrics",
        "grouping",
        "timings",
        "environment",
    ):
        assert key in data, key
    assert data["config"]["epochs"] == 2
    assert set(data["metrics"]) >= {"avg", "top1", "head", "medium", "tail"}
    assert data["grouping"]["rule"] == "thirds"
    assert data["train_counts"] == [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
    acc = data["per_class_accuracy"]
    assert len(acc) == 10 and abs(data["metrics"]["avg"] - sum(acc) / 10) < 1e-12
    assert {"python", "torch", "device", "git_commit"} <= set(data["environment"])
    assert not (res / ".runs" / "digits-lt10" / "ce" / "cnn-digits" / "seed0").exists()  # checkpoints cleaned

    out = tmp_path / "lb"
    assert cli("leaderboard", "--results", str(res), "--out", str(out)).returncode == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "digits-lt10.md" in first and "README.md" in first
    assert cli("leaderboard", "--results", str(res), "--out", str(out)).returncode == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_listings(digits_data):
    r = cli("datasets", "--data", str(digits_data))
    assert r.returncode == 0 and "digits-lt10" in r.stdout and "403" in r.stdout
    assert "ce" in cli("methods").stdout
    assert "cnn-digits" in cli("backbones").stdout
