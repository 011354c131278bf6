"""The leaderboard on hand-written result files (tests/result_fixtures.py) and a hand-written reported CSV:
mean ± std, t-intervals and paired differences to CE, N/A, Δ vs reported (groups only under the paper's rule),
rows split by setting, the selection-on-test flag, incomplete flags, byte-identical regeneration with and
without stray files, the config-conflict error, the README section, the paper tables as data, and the repo's
leaderboards/reported.csv against the paper."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from result_fixtures import make_result, standard_results, write

from ltbench.cli import cli
from ltbench.errors import LTBenchError
from ltbench.leaderboard import (
    README_END,
    README_START,
    REPORTED_COLUMNS,
    Setting,
    build_board,
    dataset_table,
    default_reported,
    load_run,
    load_spec,
    paper_tables,
    primary_reported,
    read_reported,
    write_leaderboards,
)
from ltbench.results import read_results, write_result

PAPER = "Test et al."
SPEC = load_spec()
SMALL12 = SPEC.suites["small12"].datasets
LARGE3 = SPEC.suites["large3"].datasets
MEAN_SMALL, MEAN_LARGE = SPEC.suites["small12"].mean, SPEC.suites["large3"].mean


def reported_csv(path: Path) -> Path:
    rows = [
        ("T1", "cifar10-lt100", "candle", "avg", "85.01", "1"),
        ("T9", "cifar10-lt100", "candle", "tail", "82.67", "1"),
        ("T9", "cifar10-lt100", "candle", "avg", "85.10", "0"),  # not primary: never compared
        ("T1", "cifar10-lt100", "tau_norm", "avg", "21.72", "1"),
        ("T1", "cifar10-lt100", "paco", "avg", "61.57", "1"),  # reported only
        ("T1", "cub200-lt10", "candle", "avg", "42.94", "1"),
        ("T1", MEAN_SMALL, "candle", "avg", "62.07", "1"),
    ]
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(REPORTED_COLUMNS)
        for table, ds, row, metric, value, primary in rows:
            w.writerow([PAPER, table, ds, row, ds, row, "reactnet-a", "", metric, value, primary])
    return path


@pytest.fixture
def setup(tmp_path):
    res = tmp_path / "results"
    standard_results(res)
    return res, reported_csv(tmp_path / "reported.csv")


def _rows(table) -> dict[tuple[str, str], dict[str, str]]:
    return {(r[0], r[1]): dict(zip(table.columns, r, strict=True)) for r in table.rows}


def test_mean_std_delta_and_flags(setup):
    res, rep = setup
    board = build_board(read_results(res), read_reported(rep))
    rows = _rows(dataset_table(board, "cifar10-lt100"))
    candle = rows[("candle", "reactnet-a")]
    # avg per seed: 0.65, 0.61667, 0.68333 → mean 65.00, sample std 3.33; tail 45/40/50 → 45.00 ± 5.00
    assert candle["avg"] == "65.00 ± 3.33"
    assert candle["head"] == "85.00 ± 5.00"
    assert candle["medium"] == "65.00 ± 0.00"
    assert candle["tail"] == "45.00 ± 5.00"
    assert candle["avg (paper)"] == "85.01" and candle["Δ avg"] == "-20.01"
    assert candle["tail (paper)"] == "82.67" and candle["Δ tail"] == "—"  # thirds ≠ the paper's groups
    assert candle["head (paper)"] == "—" and candle["Δ head"] == "—"
    # 95 % t-interval over 3 seeds: 65 ± t(0.975, 2) · 3.3333 / √3, t(0.975, 2) = √(2·0.95²/(1−0.95²))
    half = (2 * 0.95**2 / (1 - 0.95**2)) ** 0.5 * (10 / 3) / 3**0.5
    assert candle["avg 95% CI"] == f"[{65 - half:.2f}, {65 + half:.2f}]" == "[56.72, 73.28]"
    assert candle["seeds"] == "3" and candle["flags"] == ""
    assert candle["tail→head"] == "25.00 ± 0.00" and candle["medium→head"] == "10.00 ± 0.00"
    tau = rows[("tau_norm", "reactnet-a")]
    assert tau["avg"] == "50.00 ± 0.00" and tau["Δ avg"] == "+28.28"
    assert tau["flags"] == "missing seeds 2" and tau["seeds"] == "2"
    cd = rows[("candle[cd]", "reactnet-a")]
    assert cd["avg"] == "60.00" and cd["flags"] == "missing seeds 1, 2"  # one seed: no ±
    paco = rows[("paco", "reactnet-a")]
    assert paco["avg"] == "—" and paco["avg (paper)"] == "61.57" and paco["flags"] == "reported only"
    # ranked by reproduced avg, reported-only rows last
    assert [r[0] for r in dataset_table(board, "cifar10-lt100").rows] == [
        "candle",
        "candle[cd]",
        "tau_norm",
        "paco",
    ]


def test_empty_group_is_na_and_no_paper_columns_without_figures(setup):
    res, rep = setup
    board = build_board(read_results(res), read_reported(rep))
    t = dataset_table(board, "imagenet-lt")
    assert "avg (paper)" not in t.columns  # nothing reported for this dataset in the test CSV
    ce = _rows(t)[("ce", "reactnet-a")]
    assert ce["tail"] == "N/A" and ce["tail→head"] == "N/A"
    assert ce["head"] == "60.00" and ce["medium"] == "30.00"  # shots: head {0,1,2}, medium {3,4,5}
    assert any("`shots`" in n for n in t.notes)


def regroup(results: Path, rule: str) -> None:
    """Mark every result under ``results`` as grouped by ``rule`` (same classes: only the label changes)."""
    for p in results.rglob("seed*.json"):
        r = json.loads(p.read_text())
        r["grouping"]["rule"] = rule
        write_result(p, r)


def test_paper_tables_compare_only_authors_grouped_results(setup):
    res, rep = setup
    thirds = {t.key: t for t in paper_tables(build_board(read_results(res), read_reported(rep)))}["table-1"]
    cells = {r[0]: dict(zip(thirds.columns, r, strict=True)) for r in thirds.rows}
    assert cells["cifar10-lt100"]["candle"] == "— / 85.01"  # `thirds` groups: never beside the paper
    assert cells["Average"]["candle"] == "— / 62.07"
    regroup(res, "authors")
    board = build_board(read_results(res), read_reported(rep))
    t1 = {t.key: t for t in paper_tables(board)}["table-1"]
    cells = {r[0]: dict(zip(t1.columns, r, strict=True)) for r in t1.rows}
    assert cells["cifar10-lt100"]["candle"] == "65.00 / 85.01"
    assert cells["cub200-lt10"]["candle"] == "40.00 / 42.94"
    assert cells["Average"]["candle"] == "52.50 (2/12) / 62.07"  # mean of 65.00 and 40.00, over 2 of 12
    assert cells["dogs-lt10"]["balms"] == "—"
    # the per-dataset table's Δ of a group: only under the paper's rule (T9 tail 82.67 here)
    rows = _rows(dataset_table(board, "cifar10-lt100"))
    assert rows[("candle", "reactnet-a")]["Δ tail"] == "-37.67"


def test_group_deltas_need_the_papers_grouping(setup):
    res, rep = setup
    rows = _rows(dataset_table(build_board(read_results(res), read_reported(rep)), "cifar10-lt100"))
    candle = rows[("candle", "reactnet-a")]
    assert candle["Δ avg"] == "-20.01"  # avg does not depend on the groups
    assert candle["tail (paper)"] == "82.67" and candle["Δ tail"] == "—"  # thirds vs the authors' groups


def test_paper_tables_are_data_not_code():
    import inspect

    import ltbench.leaderboard.paper_spec as ps
    import ltbench.leaderboard.paper_tables as pt

    source = inspect.getsource(pt) + inspect.getsource(ps)
    for literal in ("candle", "tade", "bnext", "reactnet", "cifar"):
        assert literal not in source.lower().replace("candle paper", ""), literal
    ids = [t["id"] for t in SPEC.tables]
    assert ids == ["table-1", "table-2", "table-3", "table-5", "table-9", "table-10"]
    t1 = next(t for t in SPEC.tables if t["id"] == "table-1")
    assert t1["columns"][-1] == "tade" and SPEC.suites["small12"].groups == "authors"
    assert SPEC.suites["large3"].groups == "shots"
    # a table added to the data shows up without code
    from dataclasses import replace

    extra = {"id": "table-x", "title": "X", "kind": "matrix", "suite": "large3", "columns": ["ce"]}
    spec = replace(SPEC, tables=(*SPEC.tables, extra))
    assert paper_tables(build_board([], []), spec)[-1].columns == ["dataset", "ce"]


def test_write_is_byte_identical_and_removes_stale_pages(setup, tmp_path):
    res, rep = setup
    out = tmp_path / "lb"
    fmts = ("md", "csv", "json", "latex", "html")
    paths = write_leaderboards(res, out, fmts, rep)
    assert paths[-1] == out / "README.md"
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"cifar10-lt100.md", "cub200-lt10.md", "imagenet-lt.md", "paper-tables.md", "README.md"} <= set(
        first
    )
    assert {"leaderboard.csv", "leaderboard.json", "leaderboard.tex", "index.html"} <= set(first)
    write_leaderboards(res, out, fmts, rep)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    # a dataset whose results are gone loses its generated page; hand-written files stay
    (out / "NOTES.md").write_text("mine\n")
    for p in (res / "imagenet-lt").rglob("*.json"):
        p.unlink()
    (out / "mine.html").write_text("<p>mine</p>\n")
    write_leaderboards(res, out, ("md", "html"), rep)
    assert not (out / "imagenet-lt.md").exists() and (out / "NOTES.md").exists()
    assert not (out / "imagenet-lt.html").exists() and (out / "mine.html").exists()


def test_index_lists_provenance_and_incomplete_entries(setup, tmp_path):
    res, rep = setup
    write_leaderboards(res, tmp_path / "lb", ("md",), rep)
    index = (tmp_path / "lb" / "README.md").read_text()
    assert "cifar10-lt100 / tau_norm / reactnet-a: missing seeds 2 (has 0, 1)" in index
    assert "cifar10-lt100 / candle[cd] / reactnet-a: missing seeds 1, 2 (has 0)" in index
    assert "candle / reactnet-a: small12 suite lacks caltech101-lt10" in index
    setting = "protocol=ltbench · groups=thirds · inference=float · amp=off · device=cpu · world_size=1"
    assert f"| cifar10-lt100 | candle | reactnet-a | {setting} | 0, 1, 2 |" in index
    assert "0123456789ab" in index and "torch 2.4.0" in index


def test_machine_readable_formats(setup, tmp_path):
    res, rep = setup
    out = tmp_path / "lb"
    write_leaderboards(res, out, ("csv", "json", "latex", "html"), rep)
    data = json.loads((out / "leaderboard.json").read_text())
    rec = next(e for e in data["entries"] if (e["dataset"], e["row"]) == ("cifar10-lt100", "candle"))
    assert rec["avg"]["mean"] == 65.0 and rec["avg"]["std"] == pytest.approx(3.3333, abs=1e-4)
    assert rec["avg"]["reported"] == 85.01 and rec["avg"]["delta"] == pytest.approx(-20.01)
    assert rec["tail"]["per_seed"] == [45.0, 40.0, 50.0]
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    tau = next(r for r in rows if r["row"] == "tau_norm" and r["dataset"] == "cifar10-lt100")
    assert tau["missing_seeds"] == "2" and tau["avg_mean"] == "50.0" and tau["avg_delta"] == "28.28"
    tex = (out / "leaderboard.tex").read_text()
    assert "\\toprule" in tex and "tau\\_norm" in tex and "$\\pm$" in tex
    half = (2 * 0.95**2 / (1 - 0.95**2)) ** 0.5 * (10 / 3) / 3**0.5  # t(0.975, 2) · s / √3, s = 10/3
    assert rec["avg"]["ci95"] == [round(65 - half, 4), round(65 + half, 4)] == [56.7195, 73.2805]
    assert rec["setting"]["protocol"] == "ltbench" and rec["setting"]["inference"] == "float"
    page = (out / "index.html").read_text()
    assert '<table class="sortable">' in page and "<script>" in page and "addEventListener" in page
    assert "http" not in page.replace("http-equiv", "")  # static, no external resources
    assert page.splitlines()[1] == "<!-- generated by `ltbench leaderboard`: do not edit by hand -->"
    assert "&lt;!--" not in page  # the marker is a comment, not escaped text
    assert '<a href="cifar10-lt100.html">' in page and (out / "cifar10-lt100.html").exists()


def test_conflicting_configs_fail_loudly(setup):
    res, rep = setup
    acc = [0.5] * 6
    write(res, make_result("cifar10-lt100", "tau_norm", 2, acc, config={"epochs": 99, "lr": 0.01}))
    with pytest.raises(LTBenchError, match="disagree in config"):
        write_leaderboards(res, res.parent / "lb", ("md",), rep)


def test_missing_results_dir_and_bad_readme_are_user_errors(setup, tmp_path):
    res, rep = setup
    with pytest.raises(LTBenchError, match="no result files"):
        write_leaderboards(tmp_path / "nope", tmp_path / "lb", ("md",), rep)
    readme = tmp_path / "README.md"
    readme.write_text("# x\nno markers\n")
    with pytest.raises(LTBenchError, match="leaderboard:start"):
        write_leaderboards(res, tmp_path / "lb", ("md",), rep, readme=readme)


def test_readme_section_is_replaced_between_markers_only(setup, tmp_path):
    res, rep = setup
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nIntro.\n\n", "\n\n## After\n\nkept.\n"
    readme.write_text(before + f"{README_START}\nold text\n{README_END}" + after)
    write_leaderboards(res, tmp_path / "lb", ("md",), rep, readme=readme)
    text = readme.read_text()
    assert text.startswith(before + README_START + "\n") and text.endswith(README_END + after)
    assert "old text" not in text and "| candle | reactnet-a | 65.00 ± 3.33 |" in text
    assert "[lb/README.md](lb/README.md)" in text
    once = text
    write_leaderboards(res, tmp_path / "lb", ("md",), rep, readme=readme)
    assert readme.read_text() == once


def test_cli_leaderboard_formats_and_readme(setup, tmp_path):
    res, rep = setup
    out = tmp_path / "lb"
    r = CliRunner().invoke(
        cli,
        ["leaderboard", "--results", str(res), "--out", str(out), "--reported", str(rep)]
        + ["--format", "md", "--format", "html"],
    )
    assert r.exit_code == 0, r.output
    assert (out / "index.html").exists() and (out / "README.md").exists()
    assert not (out / "leaderboard.csv").exists()


# ------------------------------------------------------------------ the repo's reported figures


def test_repo_reported_csv_is_the_papers_figures():
    rows = read_reported(default_reported())
    assert len(rows) == 325  # every figure of paper_results.csv, one row each
    primary = primary_reported(rows)  # raises on two primary figures for one key
    known = set(SMALL12) | set(LARGE3) | {MEAN_SMALL, MEAN_LARGE}
    assert {r["dataset"] for r in rows} == known
    assert {r["row"] for r in rows} == SPEC.rows()  # the paper tables' data names every reported row
    assert {r["backbone"] for r in rows} == {"reactnet-a", "bnext-tiny"}
    assert all(0 <= float(r["value"]) <= 100 for r in rows)

    def val(ds, row, metric="avg", bb="reactnet-a"):
        return primary[(ds, row, bb)][metric].value

    assert val("caltech101-lt10", "candle") == 55.31  # T1
    assert val("cub200-lt10", "candle") == 42.94  # T1, not T9's 42.96 (kept as printed, not primary)
    assert val("inat-lt", "candle") == 47.38  # T2, not T9's 43.53
    assert val("inat-lt", "candle", "tail") == 46.35  # T9
    assert val("cifar100-lt100", "dive_star") == 32.95
    assert val(MEAN_SMALL, "candle[cd+alb]", "head") == 66.64  # T3
    assert val("cifar10-lt100", "candle[cd]") == 43.85  # T10
    assert val("dtd-lt10", "tade") == 27.98  # T8
    assert val("cub200-lt10", "candle", bb="bnext-tiny") == 46.43  # T5
    assert primary[("places-lt", "candle", "reactnet-a")]["avg"].setting.startswith("single-resolution")
    t9 = [r for r in rows if r["table"] == "T9" and r["dataset"] == "inat-lt" and r["metric"] == "avg"]
    assert [(r["value"], r["primary"]) for r in t9] == [("43.53", "0")]
    in21k = [r for r in rows if r["table"] == "T7" and "21K" in r["setting"]]
    assert len(in21k) == 13 and all(r["primary"] == "0" for r in in21k)


# ------------------------------------------------------------------ the demo's plan comes from the registry


def test_demo_plan_follows_registry_meta():
    from dataclasses import dataclass
    from typing import ClassVar

    from ltbench.demo import demo_plan
    from ltbench.method import Method, TrainConfig
    from ltbench.registry import METHODS

    @dataclass
    class VConfig(TrainConfig):
        ROW_FIELD: ClassVar[str | None] = "variant"  # rows per variant are declared, not inferred from a name
        variant: str = "full"

    class WithVariants(Method):
        Config = VConfig

    class Hidden(Method):
        pass

    METHODS.load()
    METHODS.register("zz_variants", variants=("a", "full", "b"))(WithVariants)
    METHODS.register("zz_hidden", demo=False)(Hidden)
    try:
        plan = demo_plan(seeds=2)
        labels = [(r.label, r.seed) for r in plan]
        assert (
            ("zz_variants", 0) in labels
            and ("zz_variants[a]", 1) in labels
            and ("zz_variants[b]", 0) in labels
        )
        assert ("zz_variants[full]", 0) not in labels  # the default variant is the main row
        assert not any(r.method == "zz_hidden" for r in plan)
        assert ("ce", 0) in labels and ("ce", 1) in labels and ("ce", 2) not in labels
        assert next(r for r in plan if r.label == "zz_variants[a]").sets == {"variant": "a"}
        assert [r.label for r in demo_plan(1, only=["ce"])] == ["ce"]
    finally:
        METHODS._entries.pop("zz_variants")
        METHODS._entries.pop("zz_hidden")


def test_demo_runs_the_rows_a_previous_demo_timed_longest_first(tmp_path):
    from ltbench.demo import DemoRun, longest_first
    from ltbench.results import result_path

    plan = [DemoRun("balms", None, 0), DemoRun("candle", "cd", 0, "variant"), DemoRun("ce", None, 0)]
    plan += [DemoRun("tade", None, 0), DemoRun("ce", None, 1)]
    for label, seed, timings in [
        ("balms", 0, {"fit_s": 30.0, "eval_s": 1.0}),
        ("candle[cd]", 0, {"fit_s": 50.0, "eval_s": 0.5}),
        ("ce", 0, {"fit_s": 20.0, "eval_s": 0.5}),
        ("tade", 0, {"fit_s": 45.0, "eval_s": 5.0, "extras_s": 1.0}),  # 51 s in all: after candle[cd]'s 50.5
    ]:
        path = result_path(tmp_path, "digits-lt10", label, "reactnet-a-tiny", seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"timings": timings}))
    order = [(r.label, r.seed) for r in longest_first(plan, tmp_path, "digits-lt10", "reactnet-a-tiny")]
    # ce seed 1 was never timed: first; then 51, 50.5, 31 and 20.5 s
    assert order == [("ce", 1), ("tade", 0), ("candle[cd]", 0), ("balms", 0), ("ce", 0)]
    assert longest_first(plan, tmp_path / "none", "digits-lt10", "reactnet-a-tiny") == plan  # a first demo


@pytest.mark.slow
def test_demo_end_to_end_with_ce(tmp_path, digits_data):
    from ltbench.demo import run_demo
    from ltbench.regenerate import regenerate

    res, out = tmp_path / "results", tmp_path / "lb"
    # cnn-digits keeps this quick: it tests the demo's pipeline, not the binary backbone
    paths = run_demo(
        digits_data, res, out, only=["ce"], bench_dir=None, backbone="cnn-digits", test_dist="forward10"
    )
    assert paths[-1] == out / "README.md"
    page = (out / "digits-lt10.md").read_text()
    (result,) = [json.loads(p.read_text()) for p in res.glob("*/*/*/seed*.json")]
    assert list(result["test_distributions"]) == ["forward10"]  # --test-dist reaches every run
    assert "digits-lt10: test-agnostic" in page and "forward10" in page
    assert (
        "| ce | cnn-digits |" in page and "![per-class-digits-lt10](plots/per-class-digits-lt10.png)" in page
    )
    assert (out / "index.html").exists() and (out / "plots" / "groups-digits-lt10.svg").stat().st_size > 1000
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    regenerate(res, out, ("md", "html"), bench_dir=None)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == first


# ------------------------------------------------------------------ settings, selection, paired statistics


def test_load_run_defaults_and_what_really_ran():
    r = make_result("digits-lt10", "ce", 0, [0.5] * 6, config={"amp": True})
    for key in ("protocol", "inference", "runtime"):  # an older result (schema 1) has none of these
        r.pop(key)
    run = load_run(r)  # an older result: no protocol, no inference, AMP asked on a CPU
    assert run.setting == Setting("ltbench", "thirds", "float", False, "cpu", 1)
    r["runtime"] = None  # a schema-1 file upgraded by Result.from_json and written back holds runtime: null
    assert load_run(r).setting == Setting("ltbench", "thirds", "float", False, "cpu", 1)
    r["environment"]["device"] = "cuda:0"
    assert load_run(r).setting.amp is True and load_run(r).setting.device == "cuda"  # bf16 autocast on CUDA
    r["runtime"] = {"amp": False, "device": "cuda:1", "world_size": 2}  # what the run recorded wins
    assert (load_run(r).setting.amp, load_run(r).setting.world_size) == (False, 2)
    r["protocol"], r["inference"] = "authors", {"packed": "auto", "path": "cpu-xnor"}
    assert load_run(r).setting.protocol == "authors" and load_run(r).setting.inference == "cpu-xnor"


def test_rows_never_mix_protocol_grouping_inference_or_amp(tmp_path):
    res = tmp_path / "results"
    variants = {
        "plain": {},
        "authors": {"protocol": "authors"},
        "packed": {"inference": {"packed": "auto", "path": "cpu-xnor"}},
        "groups": {"grouping": {"rule": "authors", "classes": {"head": [0], "medium": [1], "tail": [2]}}},
        "amp": {"runtime": {"amp": True, "device": "cuda:0"}},
    }
    for i, (name, extra) in enumerate(variants.items()):
        for seed in (0, 1):
            r = make_result("cifar10-lt100", "ce", seed, [0.1 * (i + 1)] * 6)
            r.update(extra)
            path = res / name / "cifar10-lt100" / "ce" / "reactnet-a" / f"seed{seed}.json"
            write_result(path, r)
    board = build_board([r for r in read_results(res / "plain")] + sum((read_results(res / n) for n in variants if n != "plain"), []), [])  # fmt: skip
    es = board.entries["cifar10-lt100"]
    assert len(es) == 5 and all(len(e.runs) == 2 for e in es)  # 5 settings × 2 seeds, never averaged
    assert sorted(round(e.mean("avg")) for e in es) == [10, 20, 30, 40, 50]
    t = dataset_table(board, "cifar10-lt100")
    col = t.columns.index("setting")
    tags = {r[col] for r in t.rows}
    assert "protocol=authors · groups=thirds · inference=float · amp=off · device=cpu" in tags
    assert "protocol=ltbench · groups=thirds · inference=cpu-xnor · amp=off · device=cpu" in tags
    assert "protocol=ltbench · groups=thirds · inference=float · amp=on · device=cuda" in tags


def test_selection_on_test_labels_is_flagged(setup):
    res, rep = setup
    p = next((res / "cifar10-lt100" / "tau_norm").rglob("seed0.json"))
    r = json.loads(p.read_text())
    r["selection"] = {"what": "tau", "on": "test"}
    write_result(p, r)
    q = next((res / "cifar10-lt100" / "candle").rglob("seed0.json"))
    r = json.loads(q.read_text())
    r["selection"] = [{"what": "epoch", "on": "val"}]
    write_result(q, r)
    rows = _rows(dataset_table(build_board(read_results(res), read_reported(rep)), "cifar10-lt100"))
    assert rows[("tau_norm", "reactnet-a")]["flags"] == "missing seeds 2; selection on test labels (tau)"
    assert rows[("candle", "reactnet-a")]["flags"] == ""  # selected on val: nothing to flag


def test_paired_difference_to_ce_and_the_ns_mark(setup):
    res, rep = setup
    # CE per seed so that candle − CE = 5, 6, 7 (candle avg: 65, 61.667, 68.333)
    for seed, v in {0: 0.60, 1: 0.5566667, 2: 0.6133333}.items():
        write(res, make_result("cifar10-lt100", "ce", seed, [v] * 6))
    board = build_board(read_results(res), read_reported(rep))
    rows = _rows(dataset_table(board, "cifar10-lt100"))
    t2 = (2 * 0.95**2 / (1 - 0.95**2)) ** 0.5  # t(0.975, 2), closed form
    half = t2 * 1.0 / 3**0.5  # differences 5, 6, 7: std 1
    assert (
        rows[("candle", "reactnet-a")]["avg vs ce (paired)"] == f"+6.00 [{6 - half:.2f}, {6 + half:.2f}] (3)"
    )
    # tau_norm − CE on seeds 0, 1: 50 − 60 = −10, 50 − 55.667 = −5.667; t(0.975, 1) = tan(0.475π)
    import math

    d = [-10.0, 50 - 55.66667]
    m, sd = sum(d) / 2, abs(d[0] - d[1]) / 2**0.5
    h = math.tan(0.475 * math.pi) * sd / 2**0.5
    assert (
        rows[("tau_norm", "reactnet-a")]["avg vs ce (paired)"]
        == f"{m:.2f} [{m - h:.2f}, {m + h:.2f}] n.s. (2)"
    )
    assert rows[("ce", "reactnet-a")]["avg vs ce (paired)"] == "—"
    assert rows[("candle[cd]", "reactnet-a")]["avg vs ce (paired)"] == "+0.00 (1)"  # one seed: no interval


# ------------------------------------------------------------------ pure function of the inputs


def test_pages_do_not_depend_on_files_left_on_disk(setup, tmp_path):
    from ltbench.leaderboard import load_board, write_board
    from ltbench.plots import make_plots

    res, rep = setup
    out = tmp_path / "lb"
    fmts = ("md", "html", "csv", "json", "latex")
    board = load_board(res, rep)
    write_board(board, out, fmts)
    bare = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "plots").mkdir()
    for name in ("per-class-cifar10-lt100.png", "lambda-schedule.png", "groups-cub200-lt10.png"):
        (out / "plots" / name).write_bytes(b"\x89PNG stray")
    write_board(load_board(res, rep), out, fmts)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == bare  # stray PNGs: no effect
    drawn = make_plots(board, out, None)
    write_board(board, out, fmts, drawn.figures)
    once = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "![lambda-schedule](plots/lambda-schedule.png)" in once["README.md"].decode()
    assert "multires-cost" not in once["README.md"].decode()  # not drawn (no benchmark): not linked
    drawn2 = make_plots(load_board(res, rep), out, None)
    write_board(load_board(res, rep), out, fmts, drawn2.figures)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == once
    assert drawn2.figures == drawn.figures


def test_cli_leaderboard_plots_draws_the_figures_it_links(setup, tmp_path):
    res, rep = setup
    out = tmp_path / "lb"
    r = CliRunner().invoke(
        cli,
        ["leaderboard", "--results", str(res), "--out", str(out), "--reported", str(rep), "--bench", "none"]
        + ["--format", "md", "--plots", "--method", "candle"],
    )
    assert r.exit_code == 0, r.output
    page = (out / "cifar10-lt100.md").read_text()
    for stem in ("per-class-cifar10-lt100", "per-class-lines-cifar10-lt100", "groups-cifar10-lt100"):
        assert f"![{stem}](plots/{stem}.png)" in page and (out / "plots" / f"{stem}.png").exists()
    r = CliRunner().invoke(
        cli, ["leaderboard", "--results", str(res), "--out", str(tmp_path / "np")]
    )  # without --plots: no figures drawn, none linked
    assert r.exit_code == 0 and "## Figures" not in (tmp_path / "np" / "cifar10-lt100.md").read_text()
    assert not (tmp_path / "np" / "plots").exists()


def test_authors_protocol_split_is_compared_with_the_paper(setup):
    res, rep = setup
    regroup(res, "authors")  # the ltbench-protocol results, grouped as the authors did
    for seed, v in {0: 0.8, 1: 0.9}.items():  # the same method on the authors' own split
        r = make_result("cifar10-lt100-authors", "candle", seed, [v] * 6, rule="authors")
        r["protocol"] = "authors"
        write(res, r)
    board = build_board(read_results(res), read_reported(rep))
    t1 = {t.key: t for t in paper_tables(board)}["table-1"]
    cells = {r[0]: dict(zip(t1.columns, r, strict=True)) for r in t1.rows}
    assert cells["cifar10-lt100"]["candle"] == "85.00 / 85.01"  # the authors' split wins over ltbench's 65.00
    rows = _rows(dataset_table(board, "cifar10-lt100-authors"))  # its page sits beside the paper too
    assert (
        rows[("candle", "reactnet-a")]["avg (paper)"] == "85.01"
        and rows[("candle", "reactnet-a")]["Δ avg"] == "-0.01"
    )
    assert rows[("paco", "reactnet-a")]["flags"] == "reported only"


def test_demo_rejects_a_bad_test_dist_before_training(tmp_path, digits_data, monkeypatch):
    import ltbench.demo as demo_mod

    monkeypatch.setattr(demo_mod, "_run", lambda *a: pytest.fail("trained despite a bad --test-dist"))
    with pytest.raises(LTBenchError, match="forward7"):
        demo_mod.run_demo(
            digits_data, tmp_path / "r", tmp_path / "lb", only=["ce"], test_dist="forward7", jobs=1
        )
