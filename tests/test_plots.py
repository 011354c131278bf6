"""Every figure is drawn (Agg) into a non-empty PNG and SVG with the expected axes and data; absent inputs are
skipped with a reason, never drawn from made-up data; make_plots returns exactly what it drew (the list the
pages link) and leaves plots/ alone when it draws nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from result_fixtures import standard_results

from ltbench.errors import LTBenchError
from ltbench.leaderboard import build_board, load_board, write_board
from ltbench.plots import (
    MAX_LINES,
    groups_figure,
    lambda_figure,
    make_plots,
    multires_figure,
    per_class_figure,
    per_class_lines_figure,
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
    plots = make_plots(load_board(res, True), out, bench, methods=("candle", "tau_norm"))
    return res, out, plots


def test_every_figure_is_written_as_png_and_svg(drawn):
    _, out, plots = drawn
    names = {p.name for p in plots.files}
    for stem in (
        "per-class-cifar10-lt100",
        "per-class-lines-cifar10-lt100",
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
    assert plots.skipped == ["per-class-lines-imagenet-lt: none of candle, tau_norm ran on imagenet-lt"]
    assert not list(out.glob(".plots.tmp*"))
    # the figure list the pages link is exactly the PNGs written, by dataset
    assert plots.figures[""] == ["plots/lambda-schedule.png", "plots/multires-cost.png", "plots/reported-vs-reproduced.png"]  # fmt: skip
    assert plots.figures["cub200-lt10"] == [
        "plots/per-class-cub200-lt10.png",
        "plots/per-class-lines-cub200-lt10.png",  # candle ran there
        "plots/groups-cub200-lt10.png",
        "plots/weight-norms-cub200-lt10.png",
    ]
    linked = {p for ps in plots.figures.values() for p in ps}
    assert linked == {f"plots/{n}" for n in names if n.endswith(".png")}


def test_absent_inputs_are_skipped_with_a_reason(tmp_path):
    res = tmp_path / "results"
    standard_results(res)
    for p in (res / "cub200-lt10").rglob("*.json"):  # the only result with λ and weight-norm records
        p.unlink()
    plots = make_plots(load_board(res, False), tmp_path / "lb", tmp_path / "no-bench")
    names = {p.name for p in plots.files}
    assert not names & {"lambda-schedule.png", "multires-cost.png", "reported-vs-reproduced.png"}
    text = "\n".join(plots.skipped)
    for needle in ("lambda-schedule", "weight-norms", "multires-cost", "reported-vs-reproduced"):
        assert needle in text
    assert "" not in plots.figures


def test_nothing_drawn_leaves_plots_alone(tmp_path):
    out = tmp_path / "lb"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "kept.png").write_bytes(b"x")
    plots = make_plots(build_board([], []), out, None)
    assert plots.files == [] and plots.figures == {}
    assert (out / "plots" / "kept.png").read_bytes() == b"x"
    assert not list(out.glob(".plots.tmp*"))


def test_line_plots_are_for_a_few_chosen_rows(drawn):
    res, out, plots = drawn
    with pytest.raises(LTBenchError, match=f"at most {MAX_LINES}"):
        make_plots(
            build_board(read_results(res), []), out, None, methods=[f"m{i}" for i in range(MAX_LINES + 1)]
        )
    board = build_board(read_results(res), [])
    es = [e for e in board.entries["cifar10-lt100"] if e.row in ("candle", "tau_norm")]
    fig = per_class_lines_figure("cifar10-lt100", es)
    strip, ax = fig.axes
    assert [p.get_height() for p in strip.patches] == [100, 60, 30, 20, 10, 5]  # train counts, head → tail
    assert {ln.get_label() for ln in ax.lines if not ln.get_label().startswith("_")} == {
        "candle (reactnet-a)",
        "tau_norm (reactnet-a)",
    }
    candle = next(ln for ln in ax.lines if ln.get_label() == "candle (reactnet-a)")
    assert list(candle.get_ydata()) == pytest.approx([90, 80, 70, 60, 50, 40])  # mean over 3 seeds
    assert ax.get_ylim() == (0, 102) and ax.get_ylabel() == "per-class accuracy (%)"


def test_heatmap_is_methods_by_classes_in_lt_order(tmp_path):
    from result_fixtures import make_result, write

    res = tmp_path / "results"
    counts = [10, 50, 30, 5]  # LT order: 1, 2, 0, 3
    groups = {"head": [1], "medium": [2, 0], "tail": [3]}
    write(res, make_result("x-lt10", "ce", 0, [0.1, 0.2, 0.3, 0.4], counts=counts, groups=groups))
    write(res, make_result("x-lt10", "ce", 1, [0.3, 0.4, 0.5, 0.6], counts=counts, groups=groups))
    write(res, make_result("x-lt10", "crt", 0, [0.9, 0.8, 0.7, 0.6], counts=counts, groups=groups))
    write(res, make_result("x-lt10", "crt", 1, [0.9, 0.8, 0.7, 0.6], counts=counts, groups=groups))
    es = build_board(read_results(res), []).entries["x-lt10"]  # ranked: crt (75) before ce (35)
    fig = per_class_figure("x-lt10", es)
    strip, heat, grp, _cbar = fig.axes
    assert [p.get_height() for p in strip.patches] == [50, 30, 10, 5]
    assert [t.get_text() for t in strip.texts] == ["head", "medium", "tail"]
    grid = heat.images[0].get_array()
    # rows: crt, ce; columns: classes 1, 2, 0, 3; cells = mean over seeds in %
    assert np.asarray(grid) == pytest.approx(np.array([[80, 70, 90, 60], [30, 40, 20, 50]]))
    assert [t.get_text() for t in heat.get_yticklabels()] == ["crt (reactnet-a)", "ce (reactnet-a)"]
    assert [t.get_text() for t in heat.get_xticklabels()] == ["1", "2", "0", "3"]
    # per-group means beside: head, medium, tail, avg of each row
    assert np.asarray(grp.images[0].get_array()) == pytest.approx(
        np.array([[80, 80, 60, 75], [30, 30, 50, 35]])
    )
    assert [t.get_text() for t in grp.texts] == ["80", "80", "60", "75", "30", "30", "50", "35"]


def test_axes_and_labels(drawn):
    res, out, _ = drawn
    board = build_board(read_results(res), [])
    es = [e for e in board.entries["cifar10-lt100"] if e.runs]
    fig = groups_figure("cifar10-lt100", es)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "accuracy (%)"
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{e.row} ({e.backbone})" for e in es]
    assert len(ax.patches) == 4 * len(es)
    assert ax.get_legend_handles_labels()[1] == ["avg", "head", "medium", "tail"]
    candle = ax.patches[
        0 :: len(es)
    ]  # first bar of each metric = candle: avg 65, head 85, medium 65, tail 45
    assert [p.get_height() for p in candle] == pytest.approx([65, 85, 65, 45])

    cub = [e for e in board.entries["cub200-lt10"] if e.runs]
    fig = weight_norm_figure("cub200-lt10", cub)
    teacher, student = fig.axes
    assert teacher.get_ylabel() == "classifier weight norm" and teacher.get_title() == "teacher"
    assert list(student.lines[0].get_ydata()) == pytest.approx([2.0, 2.1, 2.5, 2.2, 2.6, 3.0])

    fig = lambda_figure([("cub200-lt10 · candle", np.array([0.5, 0.6, 0.8, 0.9]))])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and "λ" in ax.get_ylabel()
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3, 4]

    fig = multires_figure(read_multires(out.parent / "bench"))
    a, b = fig.axes
    assert a.get_ylabel() == "1 epoch time (s)" and b.get_ylabel() == "peak memory (MB)"
    assert [p.get_height() for p in a.patches] == [10.0, 12.0, 30.0]
    assert [t.get_text() for t in a.texts] == ["×1.00", "×1.20", "×3.00"]

    fig = scatter_figure([("avg", 85.0, 65.0, 3.3), ("tail", 82.7, 45.0, 5.0)])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "reported accuracy (%)" and ax.get_ylabel() == "reproduced accuracy (%)"


def test_leaderboard_links_what_was_drawn(drawn):
    res, out, plots = drawn
    write_board(load_board(res, True), out, ("md", "html"), plots.figures)
    page = (out / "cub200-lt10.md").read_text()
    assert "![weight-norms-cub200-lt10](plots/weight-norms-cub200-lt10.png)" in page
    assert "weight-norms" not in (out / "cifar10-lt100.md").read_text()
    index = (out / "README.md").read_text()
    assert "(plots/lambda-schedule.png)" in index and "(plots/multires-cost.png)" in index
    assert '<img src="plots/reported-vs-reproduced.png"' in (out / "index.html").read_text()
    assert '<img src="plots/per-class-cifar10-lt100.png"' in (out / "cifar10-lt100.html").read_text()
