"""``ltbench verify DIR``: OK for an intact build, one line per difference and exit 2 otherwise."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cifar_fixtures import run_cli, synthetic_spec  # noqa: E402
from ltbench.builders.build import build  # noqa: E402
from ltbench.builders.profile import lt_counts  # noqa: E402
from ltbench.builders.verify import verify_split  # noqa: E402

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(synthetic_spec(), 10, tmp_path_factory.mktemp("v"))


@pytest.fixture
def copy(built, tmp_path):
    return Path(shutil.copytree(built, tmp_path / built.name))


def test_intact_copy_is_ok(copy, capsys):
    (copy / ".gitattributes").write_text("*.parquet filter=lfs\n")  # what a Hub repo adds; ignored
    code, out, _ = run_cli(["verify", copy], capsys)
    assert (
        code == 0
        and out.startswith("OK synthetic-lt10:")
        and f"train {sum(lt_counts(60, 10, 10))} rows" in out
    )


def test_changed_byte_is_reported(copy, capsys):
    shard = next(copy.glob("train-*.parquet"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, out, err = run_cli(["verify", copy], capsys)
    assert code == 2 and f"DIFFERS {shard.name}: sha256" in out
    assert "does not match its manifest" in err and err.count("\n") == 1


def test_missing_and_extra_files(copy):
    shard = next(copy.glob("test-*.parquet"))
    shard.rename(copy / "test-extra.parquet")
    problems = verify_split(copy)
    assert f"{shard.name}: missing" in problems
    assert "test-extra.parquet: not listed in the manifest" in problems
    assert any(p.startswith("test: 0 rows") for p in problems)


def test_manifest_counts_are_rechecked(copy):
    m = json.loads((copy / "manifest.json").read_text())
    m["splits"]["train"]["class_counts"][0] += 1
    m["splits"]["test"]["num_rows"] += 1
    (copy / "manifest.json").write_text(json.dumps(m))
    problems = verify_split(copy)
    assert any("train: per-class counts differ" in p and "class 0" in p for p in problems)
    assert any(p.startswith("test: 20 rows, the manifest says 21") for p in problems)


def test_card_edit_is_reported(copy):
    (copy / "README.md").write_text((copy / "README.md").read_text() + "\nedited\n")
    assert [p.split(":")[0] for p in verify_split(copy)] == ["README.md"]


def test_not_a_split_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(["verify", tmp_path], capsys)
    assert code == 2 and "not a built split" in err and err.count("\n") == 1
