"""No module outside ``ltbench/families.py`` decides anything by comparing a family's name (issue 15, point 3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ltbench.baselines import tade
from ltbench.baselines.paco import image_mode, key_transform, query_transform

from ltbench.families import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("ltbench", "baselines", "candle", "builders")


def _family_name_comparisons(path: Path) -> list[str]:
    """``x == "digits"`` / ``x != "small"`` / ``x in ("digits", ...)`` with a family name as a literal."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            if any(isinstance(v, ast.Constant) and v.value in FAMILIES for v in values):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


def test_no_family_name_switch_outside_the_family_registry():
    files = [p for part in PARTS for p in (ROOT / part).rglob("*.py") if p.name != "families.py"]
    # the teacher *encoder* named "digits" (ltbench.teachers.ENCODERS) is not a family; its two checks are allowed
    allowed = {"ltbench/teachers.py", "candle/teacher.py"}
    hits = [h for f in files for h in _family_name_comparisons(f) if h.split(":")[0] not in allowed]
    assert hits == []


@pytest.mark.parametrize(("family", "colour_jitter_args"), [("digits", 2), ("small", 4), ("large", 4)])
def test_view_style_comes_from_the_family(family, colour_jitter_args):
    """Grey families get brightness/contrast jitter only; natural-image families get all four ColorJitter terms."""
    jitters = [
        t.transforms[0]
        for t in key_transform(family, 32).transforms
        if type(t).__name__ == "RandomApply" and type(t.transforms[0]).__name__ == "ColorJitter"
    ]
    set_terms = [
        k for k in ("brightness", "contrast", "saturation", "hue") if getattr(jitters[0], k) is not None
    ]
    assert len(set_terms) == colour_jitter_args
    assert image_mode(family) == ("L" if family == "digits" else "RGB")
    q = [type(t).__name__ for t in query_transform(family, 32).transforms]
    assert ("AutoAugment" in q) == (family == "small")
    assert ("RandAugment" in q) == (family == "large")
    tt = [type(t).__name__ for t in tade.test_time_view(family, 32).transforms]
    assert ("RandomGrayscale" in tt) == (family != "digits")
