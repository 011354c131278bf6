"""Rich progress bars and the console, shared by every long-running command."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")

console = Console(stderr=True)


def enabled() -> bool:
    return console.is_terminal and not os.environ.get("LTBENCH_NO_PROGRESS")


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not enabled(),
    )


def track(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Iterate with a transient progress bar (silent when stderr is not a terminal)."""
    with make_progress() as prog:
        task = prog.add_task(description, total=total, info="")
        for item in items:
            yield item
            prog.advance(task)
