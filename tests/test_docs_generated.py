"""The committed docs' generated blocks (recipe table, registry tables) match what the registries give now."""

from __future__ import annotations

from ltbench.docgen import BLOCKS, ROOT, block, render


def test_every_block_has_its_markers():
    for rel, name in BLOCKS:
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert block(text, name) is not None, (
            f"{rel} lacks <!-- {name}:start/end --> (run python -m ltbench.docgen)"
        )


def test_committed_docs_match_generated():
    for path, text in render().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python -m ltbench.docgen"
