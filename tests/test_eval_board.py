"""The leaderboard's issue-16 parts: the test-agnostic table, cost columns, teacher reference rows and the
teacher-overlap flag, from hand-written result files."""

from __future__ import annotations

from result_fixtures import make_result

from ltbench.leaderboard import build_board
from ltbench.leaderboard.eval_views import agnostic_table, cost_cells, reference_table
from ltbench.leaderboard.markdown import dataset_page
from ltbench.leaderboard.views import dataset_table, flags

PER_CLASS = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]


def _result(row, seed, dists, cost=None, overlap=None, ref=None):
    r = make_result("cub200-lt10", row, seed, PER_CLASS)
    r["test_distributions"] = {n: {"top1": v, "avg": v, "num_rows": 10} for n, v in dists.items()}
    r["test_distributions_protocol"] = {
        "skipped": {"forward50": "a class would get int(4 / 50) = 0 test images"}
    }
    r["cost"] = cost or {
        "params": 2_500_000,
        "ops": 1.2e8,
        "latency_ms": 3.0 + seed,
        "threads": 4,
        "path": "packed",
    }
    r["teacher_overlap"] = overlap or {"flag": False, "weights": []}
    if ref:
        r["teacher_reference"] = ref
    return r


def _board():
    ce = [_result("ce", s, {"backward2": 0.5 + s / 100, "uniform": 0.6, "forward2": 0.7}) for s in (0, 1)]
    hit = {
        "flag": True,
        "weights": [
            {"role": "teacher", "weights": "resnet152", "corpus": "imagenet-1k", "overlap": {"what": "x"}}
        ],
    }
    ref = {
        "encoder": "resnet152",
        "metrics": {"avg": 0.9, "head": 0.95, "medium": 0.9, "tail": 0.85, "top1": 0.9},
    }
    candle = [_result("candle", 0, {"uniform": 0.8, "forward2": 0.85}, overlap=hit, ref=ref)]
    return build_board([*ce, *candle], [])


def test_test_agnostic_table_rows_are_methods_columns_are_distributions_in_sades_order():
    t = agnostic_table(_board(), "cub200-lt10")
    assert t.columns == ["method", "backbone", "forward2", "uniform", "backward2"]
    rows = {r[0]: r for r in t.rows}
    # ce backward2 over seeds 0, 1: 50 and 51 → mean 50.50, sample std 0.71
    assert rows["ce"][2:] == ["70.00 ± 0.00", "60.00 ± 0.00", "50.50 ± 0.71"]
    assert rows["candle"][2:] == ["85.00", "80.00", "—"]
    assert any("forward50: a class would get" in n for n in t.notes)


def test_cost_columns_and_overlap_flag_in_the_dataset_table():
    board = _board()
    t = dataset_table(board, "cub200-lt10")
    assert t.columns[-5:-2] == ["params (M)", "OPs (M)", "CPU latency (ms, threads)"]
    ce = next(e for e in board.entries["cub200-lt10"] if e.row == "ce")
    assert cost_cells(ce) == ["2.5", "120", "3.5 (4t, packed)"]  # median of 3.0 and 4.0 ms
    candle = next(e for e in board.entries["cub200-lt10"] if e.row == "candle")
    assert "teacher saw test images: resnet152 (imagenet-1k)" in flags(candle) and "teacher saw" not in flags(
        ce
    )


def test_reference_rows_and_the_page():
    board = _board()
    t = reference_table(board, "cub200-lt10")
    assert len(t.rows) == 1 and t.rows[0][0] == "teacher of candle (resnet152, FP)"
    assert t.rows[0][2:] == [
        "90.00",
        "95.00",
        "90.00",
        "85.00",
        "90.00",
        "65.00",
    ]  # student avg = mean PER_CLASS
    page = dataset_page(board, "cub200-lt10", {})
    assert "test-agnostic" in page and "teacher reference rows" in page


def test_csv_json_and_latex_carry_the_issue_16_columns():
    """Cost, the test-agnostic distributions, the overlap flag and the reference rows reach the machine-readable
    outputs, not only the pages (values from _board(): ce latency 3 and 4 ms → median 3.5)."""
    import csv
    import io
    import json

    from ltbench.leaderboard.machine import csv_text, json_text, latex_text

    board = _board()
    recs = {r["row"]: r for r in json.loads(json_text(board))["entries"]}
    assert recs["ce"]["cost"] == {
        "params": 2_500_000,
        "ops": 1.2e8,
        "latency_ms": 3.5,
        "threads": [4],
        "path": ["packed"],
    }
    assert recs["ce"]["test_distributions"]["backward2"] == {"mean": 50.5, "std": 0.7071, "n": 2}
    assert recs["candle"]["test_distributions"] == {
        "forward2": {"mean": 85.0, "std": None, "n": 1},
        "uniform": {"mean": 80.0, "std": None, "n": 1},
    }
    assert (
        recs["candle"]["teacher_overlap"] == ["resnet152 (imagenet-1k)"]
        and recs["ce"]["teacher_overlap"] == []
    )
    assert recs["candle"]["teacher_reference"]["avg"] == {"mean": 90.0, "std": None, "n": 1}
    assert "teacher_reference" not in recs["ce"]
    rows = {r["row"]: r for r in csv.DictReader(io.StringIO(csv_text(board)))}
    assert rows["ce"]["latency_ms"] == "3.5" and rows["ce"]["params"] == "2500000"
    assert rows["ce"]["top1_backward2"] == "50.5" and rows["candle"]["top1_backward2"] == ""
    assert rows["candle"]["teacher_overlap"] == "resnet152 (imagenet-1k)"
    tex = latex_text(board)
    assert "cub200-lt10: test-agnostic" in tex and "cub200-lt10: teacher reference rows" in tex
