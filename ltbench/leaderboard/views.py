"""Format-neutral tables of the board: the per-dataset leaderboard, the README's compact table, cell formats.

Cell conventions: ``N/A`` = the group has no classes (or no test images); ``—`` = not run / not reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ltbench.groups import RULES
from ltbench.leaderboard.cells import fmt_interval, fmt_signed, fmt_stat, pct
from ltbench.leaderboard.eval_views import COST_NOTE, COST_TITLES, cost_cells, has_cost, overlap_flag
from ltbench.leaderboard.model import (
    BASELINE_ROW,
    COLUMNS,
    EXTRA,
    EXTRA_TITLES,
    Board,
    Entry,
    Setting,
    Table,
    varying_fields,
)
from ltbench.stats import LEVEL

NOT_SIGNIFICANT = "n.s."  # marks a paired difference whose interval contains 0


def fmt_paired(e: Entry, metric: str = "avg") -> str:
    """``+1.23 [-0.40, 2.86] n.s. (3)``: mean paired difference to CE, its interval, n.s. when it holds 0."""
    got = e.vs_baseline(metric)
    if got is None or got[0].mean is None:
        return "—"
    s, seeds = got
    text = fmt_signed(s.mean)
    if s.lo is not None:
        text += f" {fmt_interval(s)}" + (f" {NOT_SIGNIFICANT}" if s.contains_zero else "")
    return f"{text} ({len(seeds)})"


def flags(e: Entry) -> str:
    if not e.runs:
        return "reported only"
    out = []
    if e.missing_seeds:
        out.append(f"missing seeds {', '.join(map(str, e.missing_seeds))}")
    if e.selection_on_test:
        out.append(f"selection on test labels ({', '.join(e.selection_on_test)})")
    if overlap_flag(e):
        out.append(overlap_flag(e))
    return "; ".join(out)


def shared_setting_note(es: Sequence[Entry]) -> str:
    ran = [e.setting for e in es if e.setting is not None]
    if not ran:
        return ""
    vary = set(varying_fields(ran))
    same = [f for f in Setting.__dataclass_fields__ if f not in vary]
    return f"All rows: {ran[0].tags(same)}." if same else ""


def dataset_table(board: Board, dataset: str) -> Table:
    """The per-dataset leaderboard. Paper/Δ columns appear only when the paper reports this dataset; Δ of
    head/medium/tail only for rows grouped by the rule the paper's figures used."""
    es = board.entries[dataset]
    with_paper = any(e.reported for e in es)
    tags = board.setting_fields(dataset)
    with_ce = any(e.baseline is not None and e.row != BASELINE_ROW for e in es)
    cols = ["method", "backbone"] + (["setting"] if tags else [])
    for m in COLUMNS:
        cols += [m, f"{m} (paper)", f"Δ {m}"] if with_paper else [m]
    cols += [f"avg {LEVEL:.0%} CI"] + ([f"avg vs {BASELINE_ROW} (paired)"] if with_ce else [])
    cols += [EXTRA_TITLES[x] for x in EXTRA] + (COST_TITLES if has_cost(es) else []) + ["seeds", "flags"]
    rows = []
    for e in es:
        cells = [e.row, e.backbone] + ([e.setting.tags(tags) if e.setting else ""] if tags else [])
        for m in COLUMNS:
            cells.append(fmt_stat(e.stat(m)))
            if with_paper:
                rep = e.reported.get(m)
                cells += [pct(rep.value if rep else None), fmt_signed(e.delta(m))]
        s = e.stat("avg")
        cells.append(fmt_interval(s.summary if s else None))
        if with_ce:
            cells.append(fmt_paired(e))
        cells += [fmt_stat(e.stat(x)) for x in EXTRA] + (cost_cells(e) if has_cost(es) else [])
        cells += [str(len(e.runs)), flags(e)]
        rows.append(cells)
    rules = sorted({e.rule for e in es if e.rule})
    notes = [f"Groups: rule `{r}` — {RULES.get(r, '?')}." for r in rules]
    shared = shared_setting_note(es)
    if shared:
        notes.append(shared)
    if has_cost(es):
        notes.append(COST_NOTE)
    notes.append(
        f"Accuracy (%) on the test split, mean ± sample std over seeds; avg {LEVEL:.0%} CI = Student-t interval "
        "over seeds; avg = mean per-class accuracy; ECE (15 bins) in %; tail→head (medium→head) = % of tail "
        "(medium) class test images predicted as a head class; N/A = empty group; — = not run / not reported."
    )
    if with_ce:
        notes.append(
            f"avg vs {BASELINE_ROW}: mean over the seeds both ran of (row − {BASELINE_ROW}) in points, with the "
            f"paired {LEVEL:.0%} t-interval and that seed count; {NOT_SIGNIFICANT} = the interval contains 0."
        )
    if with_paper:
        text = "Δ = reproduced − reported (points). "
        rule = next((e.paper_groups for e in es if e.paper_groups), None)
        if rule:
            text += f"Δ head/medium/tail only for rows grouped by `{rule}`, the paper's rule. "
        notes.append(text + _sources_note(es))
    return Table(dataset, dataset, cols, rows, notes)


def _sources_note(es: Sequence[Entry]) -> str:
    used: dict[str, set[str]] = defaultdict(set)
    settings = set()
    for e in es:
        for m, rep in e.reported.items():
            used[rep.table].add(m)
            if rep.setting:
                settings.add(f"{e.row} ({e.backbone}): {rep.setting}")
    parts = [f"{t} ({', '.join(sorted(ms, key=COLUMNS.index))})" for t, ms in sorted(used.items())]
    text = "Reported: paper " + "; ".join(parts) + "."
    if settings:
        text += " Reported settings: " + "; ".join(sorted(settings)) + "."
    return text


def compact_table(board: Board, dataset: str) -> Table:
    """The README's table of one dataset: reproduced rows, avg/head/medium/tail mean ± std, seeds."""
    ran = [e for e in board.entries[dataset] if e.runs]
    tags = board.setting_fields(dataset)
    cols = ["method", "backbone"] + (["setting"] if tags else []) + [*COLUMNS, "seeds"]
    rows = [
        [e.row, e.backbone]
        + ([e.setting.tags(tags) if e.setting else ""] if tags else [])
        + [fmt_stat(e.stat(m)) for m in COLUMNS]
        + [str(len(e.runs))]
        for e in ran
    ]
    return Table(dataset, f"{dataset} (accuracy %, mean ± std over seeds)", cols, rows)


def incomplete(board: Board, suites: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Lines naming entries that miss seeds and rows run on part of a paper suite."""
    out = [
        f"- {e.dataset} / {e.row} / {e.backbone}: missing seeds {', '.join(map(str, e.missing_seeds))} "
        f"(has {', '.join(map(str, e.seeds))})"
        for e in board.reproduced()
        if e.missing_seeds
    ]
    for suite, sets in suites:
        ran: dict[tuple[str, str], set[str]] = defaultdict(set)
        for d in sets:
            for e in board.entries.get(d, []):
                if e.runs:
                    ran[(e.row, e.backbone)].add(d)
        for (row, bb), got in sorted(ran.items()):
            if len(got) < len(sets):
                out.append(
                    f"- {row} / {bb}: {suite} suite lacks {', '.join(d for d in sets if d not in got)}"
                )
    return out


def env_text(env: dict) -> str:
    dev = env.get("device_name") or env.get("device", "?")
    return f"ltbench {env.get('ltbench', '?')}, torch {env.get('torch', '?')}, py {env.get('python', '?')}, {dev}"


def commit_text(c: str) -> str:
    return c[:12] + ("-dirty" if c.endswith("-dirty") else "")


def provenance_table(board: Board) -> Table:
    rows = []
    for e in board.reproduced():
        assert e.setting is not None
        commits = sorted({str(r.environment.get("git_commit")) for r in e.runs})
        envs = sorted({env_text(dict(r.environment)) for r in e.runs})
        rows.append(
            [e.dataset, e.row, e.backbone, e.setting.tags(), ", ".join(map(str, e.seeds))]
            + [e.runs[0].config_hash, ", ".join(map(commit_text, commits)), "; ".join(envs)]
        )
    cols = ["dataset", "method", "backbone", "setting", "seeds", "config hash", "commit", "environment"]
    return Table("provenance", "Provenance of reproduced entries", cols, rows)
