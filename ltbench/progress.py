"""Progress for every long-running command: rich bars on a terminal, plain lines in a log, silence at --quiet.

Where stderr is a terminal, :func:`make_progress` is a transient rich progress bar. Where it is not (``make demo >
log 2>&1``, SLURM, ``nohup``), it is a :class:`PlainProgress` with the same calls that writes one line per stage
when it ends, one per :func:`report` (the trainer reports each epoch, the demo each finished run) and, in a long
stage, one at least every ``LTBENCH_PROGRESS_EVERY`` seconds (60)::

    [ltbench] ce seed 0 | stage1: epoch 3/10, 30%, elapsed 0:00:12, ETA 0:00:28, loss 1.234 lr 0.01 812 img/s

``--quiet`` (or ``LTBENCH_QUIET=1``, which worker processes inherit) prints no progress and no messages, only
the command's result on stdout; ``LTBENCH_NO_PROGRESS=1`` turns progress off and keeps the messages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")

console = Console(stderr=True)
console.soft_wrap = not console.is_terminal  # in a log, one message is one line (no wrapping at 80 columns)
QUIET_ENV = "LTBENCH_QUIET"
EVERY_ENV = "LTBENCH_PROGRESS_EVERY"
LINE_PREFIX = "[ltbench] "
_label = ""  # what this process works on (a demo worker names its run), put before every line


def quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def set_quiet() -> None:
    """Silence progress and messages in this process and the processes it starts (``--quiet``)."""
    os.environ[QUIET_ENV] = "1"
    console.quiet = True


def set_label(label: str) -> None:
    """Name what this process works on in every plain progress line (e.g. ``ce seed 0`` in a demo worker)."""
    global _label
    _label = label


def mode() -> str:
    """``rich`` (a terminal), ``plain`` (a log file or pipe) or ``off`` (quiet, or LTBENCH_NO_PROGRESS)."""
    if quiet() or console.quiet or os.environ.get("LTBENCH_NO_PROGRESS"):
        return "off"
    return "rich" if console.is_terminal else "plain"


def enabled() -> bool:
    return mode() == "rich"


def clock(seconds: float) -> str:
    s = max(round(seconds), 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Task:
    def __init__(self, description: str, total: float | None, info: str, visible: bool):
        self.description, self.total, self.info, self.visible = description, total, info, visible
        self.completed = 0.0
        self.start = self.last_line = time.perf_counter()
        self.lined_at: float | None = None  # ``completed`` when the last line was written


class PlainProgress:
    """The subset of ``rich.progress.Progress`` ltbench calls, writing plain lines to stderr (or nothing)."""

    def __init__(self, silent: bool = False, every: float | None = None):
        self.silent = silent
        self.every = float(os.environ.get(EVERY_ENV, "60")) if every is None else every
        self.tasks: list[_Task] = []

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        """Each stage ends with a line, unless its last report already said how far it got."""
        if exc_type is None:
            for i, t in enumerate(self.tasks):
                if t.lined_at != t.completed:
                    self.line(i, f"done {self._far(t)}")

    def add_task(
        self, description: str, total: float | None = None, info: str = "", visible: bool = True, **_
    ):
        self.tasks.append(_Task(description, total, info, visible))
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(
        self, task_id: int, advance: float = 0, completed: float | None = None, info: str | None = None, **_
    ):
        t = self.tasks[task_id]
        t.completed = completed if completed is not None else t.completed + advance
        if info is not None:
            t.info = info
        now = time.perf_counter()
        if now - t.last_line >= self.every and (t.total is None or t.completed < t.total):
            self.line(task_id, t.info or self._far(t))

    @staticmethod
    def _far(t: _Task) -> str:
        return f"{t.completed:,.0f}/{t.total:,.0f}" if t.total is not None else f"{t.completed:,.0f}"

    def line(self, task_id: int, text: str) -> None:
        """One line: what, ``text`` (how far and the running figures), percent done, elapsed and ETA."""
        t = self.tasks[task_id]
        now = time.perf_counter()
        t.last_line, t.lined_at = now, t.completed
        if self.silent or not t.visible:
            return
        elapsed = now - t.start
        parts = [text]
        if t.total:
            frac = min(t.completed / t.total, 1.0)
            parts.append(f"{100 * frac:.0f}%")
            parts.append(f"elapsed {clock(elapsed)}")
            if 0 < frac < 1:
                parts.append(f"ETA {clock(elapsed * (1 - frac) / frac)}")
        else:
            parts.append(f"elapsed {clock(elapsed)}")
        who = f"{_label} | " if _label else ""
        console.file.write(f"{LINE_PREFIX}{who}{t.description}: {', '.join(parts)}\n")
        console.file.flush()


def make_progress() -> Progress | PlainProgress:
    m = mode()
    if m == "rich":
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
    return PlainProgress(silent=m == "off")


def report(prog: Progress | PlainProgress, task_id: int, text: str) -> None:
    """A milestone (an epoch, a finished run): one plain line in a log; on a terminal the bar's info shows it."""
    if isinstance(prog, PlainProgress):
        prog.line(task_id, text)
    else:
        prog.update(task_id, info=text)


def epoch_summary(rec: dict[str, float], epochs: int) -> str:
    """``epoch 3/10 loss 1.234 lr 0.01 812 img/s`` and any other figure of the epoch's record (e.g. acc)."""
    skip = ("epoch", "loss", "lr", "images_per_s")
    extra = " ".join(f"{k} {v:.4g}" for k, v in rec.items() if k not in skip and isinstance(v, (int, float)))
    text = f"epoch {rec['epoch']}/{epochs} loss {rec['loss']:.4g} lr {rec['lr']:.3g}"
    if "images_per_s" in rec:
        text += f" {rec['images_per_s']:,.0f} img/s"
    return f"{text} {extra}".rstrip()


def track(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Iterate with a progress bar (a line at the end in a log; silent at --quiet)."""
    with make_progress() as prog:
        task = prog.add_task(description, total=total, info="")
        for item in items:
            yield item
            prog.advance(task)
