"""Generated blocks of the docs: each lives between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

``python -m ltbench.docgen`` rewrites them; ``tests/test_docs_generated.py`` checks the committed docs match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _recipes() -> str:
    from ltbench.recipe_evidence import recipe_table_md

    return recipe_table_md()


def _methods() -> str:
    from ltbench.tables import methods_rows

    return _md_table(["method", "stages", "sampler", "test time", "follows"], methods_rows())


def _backbones() -> str:
    from ltbench.tables import backbones_rows

    return _md_table(["backbone", "binary", "input", "description"], backbones_rows())


def _families() -> str:
    from ltbench.families import family_rows

    return _md_table(["family", "mode", "size", "default backbone", "teacher", "resolutions"], family_rows())


def _sources() -> str:
    from ltbench.registry import DATASETS

    rows = [[e.name, e.obj.title, getattr(e.obj, "scale", "")] for e in DATASETS.entries()]
    return _md_table(["source", "title", "family"], rows)


def _performance() -> str:
    from ltbench.bench_results import performance_table_md

    return performance_table_md(ROOT / "benchmarks" / "results")


#: (docs file, block name) → the function that renders the block.
BLOCKS: dict[tuple[str, str], Callable[[], str]] = {
    ("docs/methods.md", "recipes"): _recipes,
    ("docs/architecture.md", "methods"): _methods,
    ("docs/architecture.md", "backbones"): _backbones,
    ("docs/architecture.md", "families"): _families,
    ("docs/architecture.md", "sources"): _sources,
    ("README.md", "performance"): _performance,
}


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def block(text: str, name: str) -> str | None:
    m = _pattern(name).search(text)
    return m.group(2) if m else None


def render(root: Path = ROOT) -> dict[Path, str]:
    """Every docs file with its generated blocks replaced (files without a block's markers are left out)."""
    out: dict[Path, str] = {}
    for (rel, name), fn in BLOCKS.items():
        path = root / rel
        text = out.get(path) or (path.read_text(encoding="utf-8") if path.exists() else "")
        if block(text, name) is None:
            continue
        body = fn()
        out[path] = _pattern(name).sub(lambda m, b=body: m.group(1) + b + m.group(3), text)
    return out


def main() -> None:
    for path, text in render().items():
        path.write_text(text, encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
