"""Rich tables the CLI prints (registries, built datasets, one run's result)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ltbench.builders.profile import ir_tag

out = Console(width=None if sys.stdout.isatty() else 160)  # pipes get full rows, not ellipses


def built_splits(data_root: Path) -> list[str]:
    """Names of built splits under ``data_root`` (directories holding a manifest), sorted."""
    root = Path(data_root)
    return sorted(p.parent.name for p in root.glob("*/manifest.json")) if root.exists() else []


def _built_counts(data_root: Path, name: str) -> dict[str, int] | None:
    path = Path(data_root) / name / "manifest.json"
    if not path.exists():
        return None
    m = json.loads(path.read_text())
    return {s: v["num_rows"] for s, v in m["splits"].items()}


def datasets_table(data_root: Path) -> None:
    from ltbench.registry import DATASETS

    t = Table(title=f"ltbench datasets (built copies under {data_root})")
    for col in ("name", "source", "classes", "IR", "groups", "expected train", "expected test", "built"):
        t.add_column(col)
    for e in DATASETS.entries():
        spec = e.obj
        irs = [spec.paper_ir] if spec.paper_ir else []
        irs += [ir for ir in spec.irs if ir not in irs]
        for ir in irs or [None]:
            name = spec.split_name(ir)
            exp = spec.expected.get(ir if ir is not None else 0, {})
            got = _built_counts(data_root, name)
            if got is None:
                built = "-"
            else:
                ok = all(got.get(s) == n for s, n in exp.items())
                built = f"{'✓' if ok else '≠'} {got.get('train')}/{got.get('test')}"
            authors = _built_counts(data_root, spec.split_name(ir, "authors"))
            if authors is not None:
                built += f" (authors {authors.get('train')}/{authors.get('test')})"
            t.add_row(
                name,
                spec.title.split(" (")[0],
                str(spec.num_classes),
                ir_tag(ir) if ir is not None else "LT",
                spec.default_grouping,
                str(exp.get("train", "-")),
                str(exp.get("test", "-")),
                built,
            )
    out.print(t)


def dataset_details(name: str) -> None:
    from ltbench.registry import DATASETS

    spec = DATASETS.get(name)
    t = Table(title=spec.title, show_header=False)
    rows = {
        "name": spec.name,
        "classes": str(spec.num_classes),
        "IRs": ", ".join(ir_tag(i) for i in spec.irs) or "fixed (already LT)",
        **({"n_max rule": str(spec.n_max_rule)} if spec.irs else {}),
        "groups": spec.default_grouping,
        "authors' loader": spec.authors.loader if spec.authors else "-",
        "pool": spec.pool_definition,
        "files (--source-dir ROOT)": spec.layout,
        "licence": spec.license,
        "citation": spec.citation,
        "homepage": spec.homepage,
    }
    for k, v in rows.items():
        t.add_row(k, v)
    out.print(t)


def methods_rows() -> list[list[str]]:
    """One row per registered method: name, stages, sampler, test-time step, what it follows."""
    from ltbench.registry import METHODS

    return [[e.name, e.obj.stages, e.obj.sampler, e.obj.test_time, e.obj.follows] for e in METHODS.entries()]


def backbones_rows() -> list[list[str]]:
    """One row per registered backbone: name, binary, native input size, description."""
    from ltbench.registry import BACKBONES

    return [
        [
            e.name,
            "yes" if e.meta.get("binary") else "no",
            str(e.meta.get("input_size", "-")),
            e.meta.get("description", ""),
        ]
        for e in BACKBONES.entries()
    ]


def methods_table() -> None:
    t = Table(title="ltbench methods")
    for col in ("name", "stages", "sampler", "test time", "follows"):
        t.add_column(col, overflow="fold")
    for row in methods_rows():
        t.add_row(*row)
    out.print(t)


def backbones_table() -> None:
    t = Table(title="ltbench backbones")
    for col in ("name", "binary", "input", "description"):
        t.add_column(col)
    for row in backbones_rows():
        t.add_row(*row)
    out.print(t)


def pct(v: float | None) -> str:
    return "N/A" if v is None else f"{100 * v:.2f}"


def results_table(results: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("dataset", "method", "backbone", "seed"):
        t.add_column(col, justify="right" if col == "seed" else "left")
    for col in ("avg", "head", "medium", "tail", "top1", "ECE", "tail→head"):
        t.add_column(col, justify="right")
    for r in results:
        m = r["metrics"]
        t.add_row(
            r["dataset"],
            escape(r["row"]),
            r["backbone"],
            str(r["seed"]),
            *(pct(m.get(k)) for k in ("avg", "head", "medium", "tail", "top1", "ece", "tail_as_head")),
        )
    return t


def print_result(path: Path) -> None:
    r = json.loads(Path(path).read_text())
    out.print(results_table([r], escape(f"{r['row']} on {r['dataset']}")))


def rich_table(t) -> Table:
    """A :class:`ltbench.leaderboard.Table` as a rich table (first two columns left-aligned)."""
    rt = Table(title=escape(t.title), caption=escape("\n".join(t.notes[:1])) or None)
    for i, col in enumerate(t.columns):
        rt.add_column(col, justify="left" if i < 2 else "right", overflow="fold")
    for row in t.rows:
        rt.add_row(*(escape(str(c)) for c in row))  # rows like candle[cd] are not markup
    return rt
