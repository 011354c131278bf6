"""Every figure is drawn (Agg) into a non-empty PNG and SVG with the expected axes; absent inputs are skipped
with a reason, never drawn from made-up data; the leaderboard embeds the figures that exist."""

from __future__ import annotations

import json

import pytest
from result_fixtures import standard_results

from ltbench.leaderboard import build_board, write_leaderboards
from ltbench.plots import (
    groups_figure,
    lambda_figure,
    make_plots,
    multires_figure,
    per_class_figure,
    read_multires,
    scatter_figure,
    weight_norm_figure,
)
from ltbench.results import read_results

MULTIRES = {
    "device": "NVIDIA H100",
    "cases": [
        {"id": "single", "epoch_s": 10.0, "peak_mem_mb": 2000.0},
        {"id": "candle", "epoch_s": 12.0, "peak_mem_mb": 2500.0},
        {"id": "naive", "epoch_s": 30.0, "peak_mem_mb": 7000.0},
    ],
}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    res, bench, out = root / "results", root / "bench", root / "lb"
    standard_results(res)
    bench.mkdir()
    (bench / "multires-h100.json").write_text(json.dumps(MULTIRES))
    written, skipped = make_plots(res, out, bench)
    return res, out, written, skipped


def test_every_figure_is_written_as_png_and_svg(drawn):
    _, out, written, skipped = drawn
    names = {p.name for p in written}
    for stem in (
        "per-class-cifar10-lt100",
        "groups-cifar10-lt100",
        "per-class-imagenet-lt",
        "weight-norms-cub200-lt10",
        "lambda-schedule",
        "multires-cost",
        "reported-vs-reproduced",
    ):
        for ext in ("png", "svg"):
            path = out / "plots" / f"{stem}.{ext}"
            assert f"{stem}.{ext}" in names and path.stat().st_size > 1000, path
    assert (out / "plots" / "lambda-schedule.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out / "plots" / "multires-cost.svg").read_text()
    assert "weight-norms-cifar10-lt100.png" not in names  # no weight_norms record there
    assert skipped == []
    assert not list(out.glob(".plots.tmp*"))


def test_absent_inputs_are_skipped_with_a_reason(tmp_path):
    res = tmp_path / "results"
    standard_results(res)
    for p in (res / "cub200-lt10").rglob("*.json"):  # the only result with λ and weight-norm records
        p.unlink()
    written, skipped = make_plots(res, tmp_path / "lb", tmp_path / "no-bench", reported=False)
    names = {p.name for p in written}
    assert not names & {"lambda-schedule.png", "multires-cost.png", "reported-vs-reproduced.png"}
    text = "\n".join(skipped)
    for needle in ("lambda-schedule", "weight-norms", "multires-cost", "reported-vs-reproduced"):
        assert needle in text


def test_axes_and_labels(drawn):
    res = drawn[0]
    board = build_board(read_results(res), [])
    es = [e for e in board.entries["cifar10-lt100"] if e.results]
    fig = per_class_figure("cifar10-lt100", es)
    ax, ax2 = fig.axes
    assert ax.get_xlabel().startswith("class index") and ax.get_ylabel() == "train images"
    assert ax2.get_ylabel() == "per-class accuracy (%)"
    assert [p.get_height() for p in ax.patches] == [100, 60, 30, 20, 10, 5]  # train counts, head → tail
    assert {ln.get_label() for ln in ax2.lines} == {"candle (reactnet-a)", "candle[cd] (reactnet-a)", "tau_norm (reactnet-a)"}  # fmt: skip
    candle = next(ln for ln in ax2.lines if ln.get_label() == "candle (reactnet-a)")
    assert list(candle.get_ydata()) == pytest.approx([90, 80, 70, 60, 50, 40])  # mean over 3 seeds

    fig = groups_figure("cifar10-lt100", es)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "accuracy (%)" and [t.get_text() for t in ax.get_xticklabels()] == [
        "avg",
        "head",
        "medium",
        "tail",
    ]
    assert len(ax.patches) == 4 * len(es)

    cub = [e for e in board.entries["cub200-lt10"] if e.results]
    fig = weight_norm_figure("cub200-lt10", cub)
    assert fig.axes[0].get_ylabel() == "classifier weight norm"
    assert {ln.get_label() for ln in fig.axes[0].lines} == {
        "candle (reactnet-a) teacher",
        "candle (reactnet-a) student",
    }

    import numpy as np

    fig = lambda_figure([("cub200-lt10 · candle", np.array([0.5, 0.6, 0.8, 0.9]))])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and "λ" in ax.get_ylabel()
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3, 4]

    fig = multires_figure(read_multires(drawn[1].parent / "bench"))
    a, b = fig.axes
    assert a.get_ylabel() == "1 epoch time (s)" and b.get_ylabel() == "peak memory (MB)"
    assert [p.get_height() for p in a.patches] == [10.0, 12.0, 30.0]

    fig = scatter_figure([("avg", 85.0, 65.0, 3.3), ("tail", 82.7, 45.0, 5.0)])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "reported accuracy (%)" and ax.get_ylabel() == "reproduced accuracy (%)"


def test_leaderboard_embeds_existing_plots(drawn):
    res, out, _, _ = drawn
    write_leaderboards(res, out, ("md", "html"), reported=True)
    page = (out / "cub200-lt10.md").read_text()
    assert "![weight-norms-cub200-lt10](plots/weight-norms-cub200-lt10.png)" in page
    assert "weight-norms" not in (out / "cifar10-lt100.md").read_text()
    index = (out / "README.md").read_text()
    assert "(plots/lambda-schedule.png)" in index and "(plots/multires-cost.png)" in index
    assert '<img src="plots/reported-vs-reproduced.png"' in (out / "index.html").read_text()
