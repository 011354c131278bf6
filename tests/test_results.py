"""The Result type: schema-checked JSON, what really ran, stages/selection from the method's records."""

from __future__ import annotations

import json

import pytest
from result_fixtures import make_result, write

from ltbench.errors import LTBenchError
from ltbench.results import SCHEMA_VERSION, Result, load_results, read_results


def test_json_round_trip():
    r = Result.from_dict(make_result("cifar10-lt100", "candle", 0, [0.5] * 6))
    assert Result.from_json(r.to_json()) == r
    assert r.schema_version == SCHEMA_VERSION and r.config_hash


@pytest.mark.parametrize("version", [None, 0, SCHEMA_VERSION + 1])
def test_unknown_schema_version_is_an_error(version):
    data = make_result("cifar10-lt100", "candle", 0, [0.5] * 6)
    data["schema_version"] = version
    with pytest.raises(LTBenchError):
        Result.from_json(json.dumps(data))


def test_schema_1_reads_with_unknowns():
    data = make_result("cifar10-lt100", "ce", 0, [0.5] * 6)
    data["schema_version"] = 1
    for key in ("protocol", "stages", "inference", "runtime", "selection"):
        data.pop(key)
    r = Result.from_dict(data)
    assert r.protocol is None and r.stages is None and r.inference is None and r.runtime is None


def test_variant_key_separates_inference_paths():
    a = Result.from_dict(make_result("cifar10-lt100", "ce", 0, [0.5] * 6))
    b = Result.from_dict(make_result("cifar10-lt100", "ce", 1, [0.5] * 6, inference={"path": "xnor-avx2"}))
    assert a.variant_key() != b.variant_key()


def test_read_results_keeps_the_dict_shape(tmp_path):
    write(tmp_path, make_result("cifar10-lt100", "ce", 0, [0.5] * 6))
    (rows,) = read_results(tmp_path)
    assert rows["_path"] == "cifar10-lt100/ce/reactnet-a/seed0.json"
    assert rows["metrics"]["avg"] == 0.5 and rows["grouping"]["rule"] == "thirds"
    ((rel, r),) = load_results(tmp_path)
    assert r.row == "ce" and str(rel) == rows["_path"]


def test_split_records():
    from ltbench.run import split_records

    stages, selection, rest = split_records(
        {
            "stages": [{"name": "stage1", "train_images": 10}],
            "selection": {"what": "tau", "on": "val"},
            "x": 1,
        }
    )
    assert stages == [{"name": "stage1", "train_images": 10}]
    assert selection == {"what": "tau", "on": "val"} and rest["x"] == 1 and rest["stages"] == stages


def test_run_records_what_really_ran(digits_data, tmp_path):
    """amp=true on CPU: the config says true, the result says AMP did not run (it used to say true)."""
    from ltbench.run import run_one

    path = run_one(
        "ce",
        "digits-lt10",
        "cnn-digits",
        sets={"epochs": "1", "amp": "true"},
        data_root=digits_data,
        results=tmp_path,
        device="cpu",
        packed="off",
    )
    r = Result.from_json(path.read_text())
    assert r.config["amp"] is True and r.runtime == {"device": "cpu", "world_size": 1, "amp": False}
    assert r.inference["path"] == "float" and r.recipe == "official" and r.protocol == "ltbench"
    assert r.family == "digits" and r.grouping["rule"] == "thirds"
