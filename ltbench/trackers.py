"""Experiment trackers for ``ltbench run --log jsonl|tensorboard|wandb`` (repeatable).

Each run opens its trackers; every epoch of every stage is sent as it ends (the trainer calls :func:`epoch`),
and when the run is done the resolved config, the result (metrics, per-group accuracy, timings) and the run's
plots (its result alone as a board, drawn by :func:`ltbench.plots.make_plots`) are logged. Everything is written under
``<results>/logs/<dataset>/<method>/<backbone>/seed<N>/``:

- ``jsonl``: ``log.jsonl``, one JSON object a line, no dependency: ``{"event": "start", ...}``, one
  ``{"event": "epoch", "stage": ..., "epoch": ..., <figures>}`` per epoch, then ``config``, ``result``, one
  ``plot`` per file and ``end``;
- ``tensorboard``: ``tensorboard/`` event files (``torch.utils.tensorboard``; needs the ``tensorboard``
  package, ``pip install 'ltbench[log]'``): scalars ``<stage>/<figure>`` by epoch, ``result/<metric>``, the
  config and result as text, plots as images;
- ``wandb``: a Weights & Biases run (``pip install 'ltbench[log]'``), offline (``wandb/`` folder, sync later
  with ``wandb sync``) unless ``WANDB_API_KEY`` or a ``wandb login`` exists, or ``WANDB_MODE`` says otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ltbench.errors import LTBenchError

KINDS = ("jsonl", "tensorboard", "wandb")
EXTRA_HINT = "pip install 'ltbench[log]' (or pip install {package})"
WANDB_PROJECT = "ltbench"
WANDB_HOST = "api.wandb.ai"  # the netrc machine `wandb login` writes

_active: list[Tracker] = []


def epoch(stage: str, rec: dict[str, float]) -> None:
    """Send one epoch's record to every open tracker (called by the trainer on the main rank)."""
    for t in _active:
        t.epoch(stage, rec)


def log_dir(results: Path, dataset: str, method: str, backbone: str, seed: int) -> Path:
    return Path(results) / "logs" / dataset / method / backbone / f"seed{seed}"


class Tracker:
    """What every tracker does; subclasses write somewhere."""

    def __init__(self, folder: Path, run: dict[str, Any]):
        self.folder, self.run = folder, run

    def epoch(self, stage: str, rec: dict[str, float]) -> None:
        raise NotImplementedError

    def finish(self, result: dict[str, Any], summary: dict[str, Any], plots: list[Path]) -> None:
        """Log the resolved config (``result["config"]``), the result's ``summary`` and the plot files."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the tracker holds (also after a failed run)."""


class JsonlTracker(Tracker):
    def __init__(self, folder: Path, run: dict[str, Any]):
        super().__init__(folder, run)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "log.jsonl"
        self.file = self.path.open("w", encoding="utf-8")
        self._write({"event": "start", **run})

    def _write(self, obj: dict[str, Any]) -> None:
        self.file.write(json.dumps(obj, sort_keys=True) + "\n")
        self.file.flush()

    def epoch(self, stage: str, rec: dict[str, float]) -> None:
        self._write({"event": "epoch", "stage": stage, **rec})

    def finish(self, result: dict[str, Any], summary: dict[str, Any], plots: list[Path]) -> None:
        self._write({"event": "config", "config": result["config"], "config_hash": result["config_hash"]})
        self._write({"event": "result", **summary})
        for p in plots:
            self._write({"event": "plot", "name": p.stem, "path": str(p)})
        self._write({"event": "end"})

    def close(self) -> None:
        self.file.close()


class TensorBoardTracker(Tracker):
    def __init__(self, folder: Path, run: dict[str, Any]):
        super().__init__(folder, run)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LTBenchError(
                "--log tensorboard needs the tensorboard package", EXTRA_HINT.format(package="tensorboard")
            ) from None
        self.writer = SummaryWriter(str(folder / "tensorboard"))
        self.writer.add_text("run", _code(run), 0)

    def epoch(self, stage: str, rec: dict[str, float]) -> None:
        for k, v in rec.items():
            if k != "epoch":
                self.writer.add_scalar(f"{stage}/{k}", v, int(rec["epoch"]))

    def finish(self, result: dict[str, Any], summary: dict[str, Any], plots: list[Path]) -> None:
        import numpy as np
        from PIL import Image

        self.writer.add_text("config", _code(result["config"]), 0)
        self.writer.add_text("result", _code(summary), 0)
        for k, v in summary["metrics"].items():
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f"result/{k}", v, 0)
        for p in plots:
            if p.suffix == ".png":
                pixels = np.asarray(Image.open(p).convert("RGB"))
                self.writer.add_image(f"plots/{p.stem}", pixels, 0, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


def wandb_mode() -> str:
    """``WANDB_MODE`` when set; ``online`` with an API key (``WANDB_API_KEY`` or a login); else ``offline``."""
    import netrc

    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:  # `wandb login` stores the key in ~/.netrc
        return "online" if netrc.netrc().authenticators(WANDB_HOST) else "offline"
    except (FileNotFoundError, netrc.NetrcParseError):
        return "offline"


class WandbTracker(Tracker):
    def __init__(self, folder: Path, run: dict[str, Any]):
        super().__init__(folder, run)
        try:
            import wandb
        except ImportError:
            raise LTBenchError(
                "--log wandb needs the wandb package", EXTRA_HINT.format(package="wandb")
            ) from None
        folder.mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        name = f"{run['dataset']}-{run['method']}-{run['backbone']}-seed{run['seed']}"
        self.wb = wandb.init(
            project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT),
            name=name,
            dir=str(folder),
            mode=wandb_mode(),
            config={"run": run},
            reinit="create_new",
        )

    def epoch(self, stage: str, rec: dict[str, float]) -> None:
        self.wb.log({f"{stage}/{k}": v for k, v in rec.items()})

    def finish(self, result: dict[str, Any], summary: dict[str, Any], plots: list[Path]) -> None:
        self.wb.config.update({"config": result["config"], "config_hash": result["config_hash"]})
        self.wb.summary.update({f"result/{k}": v for k, v in summary["metrics"].items()})
        self.wb.summary.update({"result/path": summary["path"]})
        images = {f"plots/{p.stem}": self.wandb.Image(str(p)) for p in plots if p.suffix == ".png"}
        if images:
            self.wb.log(images)

    def close(self) -> None:
        self.wb.finish()


TRACKERS: dict[str, type[Tracker]] = {
    "jsonl": JsonlTracker,
    "tensorboard": TensorBoardTracker,
    "wandb": WandbTracker,
}


SUMMARY_KEYS = ("dataset", "row", "backbone", "seed", "metrics", "grouping", "timings", "inference")


def summary_of(result: dict[str, Any], path: Path) -> dict[str, Any]:
    """What the trackers log as the result: the result file's headline fields and its path."""
    return {**{k: result[k] for k in SUMMARY_KEYS if k in result}, "path": str(path)}


def _code(obj: Any) -> str:
    """JSON in a markdown code block (TensorBoard renders text as markdown)."""
    return "```\n" + json.dumps(obj, indent=1, sort_keys=True) + "\n```"


def run_plots(result: dict[str, Any], out: Path) -> list[Path]:
    """The plots of one run (its dataset's per-class heatmap and group bars), drawn into ``out/plots``."""
    from ltbench.leaderboard import build_board
    from ltbench.plots import make_plots

    return list(make_plots(build_board([result], []), Path(out), bench_dir=None).files)


class Trackers:
    """The trackers of one run: ``with Trackers(kinds, folder, run) as t: ...; t.finish(result_path)``."""

    def __init__(self, kinds: tuple[str, ...], folder: Path, run: dict[str, Any]):
        unknown = [k for k in kinds if k not in TRACKERS]
        if unknown:
            raise LTBenchError(f"unknown --log {unknown[0]!r}", f"choose from: {', '.join(KINDS)}")
        self.folder, self.run, self.kinds = Path(folder), run, tuple(dict.fromkeys(kinds))
        self.open: list[Tracker] = []

    def __enter__(self) -> Trackers:
        if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 logs (it writes the result too)
            return self
        try:
            for k in self.kinds:
                self.open.append(TRACKERS[k](self.folder, self.run))
        except BaseException:
            self._close()
            raise
        _active.extend(self.open)
        return self

    def finish(self, result_path: Path) -> None:
        if not self.open:
            return
        result = json.loads(Path(result_path).read_text(encoding="utf-8"))
        plots = run_plots(result, self.folder)
        for t in self.open:
            t.finish(result, summary_of(result, result_path), plots)

    def _close(self) -> None:
        for t in self.open:
            if t in _active:
                _active.remove(t)
            t.close()
        self.open = []

    def __exit__(self, *exc: Any) -> None:
        self._close()
