"""``ltbench verify DIR``: check a built split against its manifest (hashes, row and per-class counts)."""

from __future__ import annotations

from pathlib import Path

import click

from ltbench.errors import LTBenchError


@click.command("verify")
@click.argument("split_dir", type=click.Path(path_type=Path))
def command(split_dir: Path) -> None:
    """Recompute the hashes and counts of the split in SPLIT_DIR: print OK, or each difference (exit 2)."""
    from ltbench.builders.verify import summary, verify_split

    problems = verify_split(split_dir)
    if problems:
        for p in problems:
            click.echo(f"DIFFERS {p}")
        raise LTBenchError(
            f"{split_dir} does not match its manifest ({len(problems)} difference(s))",
            "rebuild it with `ltbench build --force`, or download it again",
        )
    click.echo(f"OK {summary(split_dir)}")
