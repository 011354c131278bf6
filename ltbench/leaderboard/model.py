"""The board model: result files and reported figures → entries (one per dataset × row × backbone × setting).

Reproduced numbers come only from result files, reported ones only from ``leaderboards/reported.csv``. Results
that differ in split protocol, grouping rule, inference path, AMP, device or world size never share an entry:
each such :class:`Setting` is its own row. ``load_run`` is the one place a result dict is read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ltbench.errors import LTBenchError
from ltbench.groups import GROUPS
from ltbench.leaderboard.reported import Reported, primary_reported, read_reported, resolve_reported
from ltbench.result_extras import RESULT_BLOCKS
from ltbench.stats import Summary, paired, summarize

GROUP_METRICS = GROUPS  # depend on the grouping rule
COLUMNS = ("avg", *GROUPS)
EXTRA = ("top1", "ece", "tail_as_head", "medium_as_head")
EXTRA_TITLES = {"top1": "top-1", "ece": "ECE", "tail_as_head": "tail→head", "medium_as_head": "medium→head"}
BASELINE_ROW = "ce"  # paired differences are taken against this row


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True, order=True)
class Setting:
    """What a result's numbers depend on besides method, backbone and seed; entries never mix two settings."""

    protocol: str = "ltbench"
    groups: str = ""
    inference: str = "float"
    amp: bool = False
    device: str = "cpu"
    world_size: int = 1

    def tags(self, only: Iterable[str] | None = None) -> str:
        """``protocol=ltbench · groups=thirds · inference=float · amp=off …`` for ``only`` (default all)."""
        names = [f.name for f in fields(self)] if only is None else list(only)
        return " · ".join(f"{n}={_word(getattr(self, n))}" for n in names)


def varying_fields(settings: Iterable[Setting]) -> list[str]:
    """The :class:`Setting` fields whose values differ among ``settings``."""
    pool = list(settings)
    return [f.name for f in fields(Setting) if len({getattr(s, f.name) for s in pool}) > 1]


def _word(v: Any) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else str(v)


@dataclass(frozen=True)
class Run:
    """One result file as the board reads it (metrics are fractions, as in the file)."""

    dataset: str
    row: str
    backbone: str
    seed: int
    config_hash: str
    setting: Setting
    metrics: Mapping[str, float | None]
    group_classes: Mapping[str, list[int]]
    per_class_accuracy: list[float | None] | None
    train_counts: list[int] | None
    records: Mapping[str, Any]
    environment: Mapping[str, Any]
    selection_on_test: list[str]  # what was selected on test labels (empty when nothing was)
    extras: Mapping[str, Any] = field(default_factory=dict)  # ltbench.result_extras.RESULT_BLOCKS present


def load_run(r: Mapping[str, Any]) -> Run:
    """A result dict → :class:`Run`. Fields newer than a file default: protocol ``ltbench`` (read from
    ``result["protocol"]``, ``["manifest"]["protocol"]`` or ``["split"]["protocol"]``), inference from
    ``result["inference"]["path"]`` (float when absent), AMP as really run (``result["runtime"]["amp"]`` when
    recorded, else the trainer's rule: bf16 autocast only on CUDA), world size 1, no selection."""
    env = r.get("environment", {})
    runtime = r.get("runtime") or {}  # schema 1 has no runtime block; an upgraded one holds None
    device = str(runtime.get("device", env.get("device", "cpu")))
    amp = runtime.get("amp")
    if amp is None:
        amp = bool(r.get("config", {}).get("amp")) and device.startswith("cuda")
    protocol = (
        r.get("protocol")
        or r.get("manifest", {}).get("protocol")
        or r.get("split", {}).get("protocol")
        or "ltbench"
    )
    selection = r.get("selection") or []
    if isinstance(selection, Mapping):
        selection = [selection]
    return Run(
        dataset=r["dataset"],
        row=r["row"],
        backbone=r["backbone"],
        seed=int(r["seed"]),
        config_hash=r["config_hash"],
        setting=Setting(
            protocol=str(protocol),
            groups=str(r["grouping"]["rule"]),
            inference=str(r.get("inference", {}).get("path", "float")),
            amp=bool(amp),
            device=device.split(":")[0],
            world_size=int(runtime.get("world_size", env.get("world_size", 1))),
        ),
        metrics=r["metrics"],
        group_classes=r["grouping"].get("classes", {}),
        per_class_accuracy=r.get("per_class_accuracy"),
        train_counts=r.get("train_counts"),
        records=r.get("records", {}),
        environment=env,
        selection_on_test=[str(s.get("what", "?")) for s in selection if s.get("on") == "test"],
        extras={k: r[k] for k in RESULT_BLOCKS if r.get(k) is not None},
    )


# ---------------------------------------------------------------------------------------------- entries


@dataclass
class Stat:
    """A metric over seeds, in percent; ``values`` holds only the seeds where it is defined."""

    values: list[float]
    seeds: int

    @property
    def summary(self) -> Summary:
        return summarize(self.values)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return self.summary.mean

    @property
    def std(self) -> float | None:
        return self.summary.std


@dataclass
class Entry:
    """One leaderboard row: (dataset, row, backbone, setting) with its seeds' runs and the paper's figures."""

    dataset: str
    row: str
    backbone: str
    setting: Setting | None  # None for a row only the paper reports
    runs: list[Run] = field(default_factory=list)
    reported: dict[str, Reported] = field(default_factory=dict)
    expected_seeds: tuple[int, ...] = ()
    baseline: Entry | None = None  # the CE entry with the same dataset, backbone and setting
    paper_groups: str | None = None  # the grouping rule of the paper's figures on this dataset

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def missing_seeds(self) -> list[int]:
        return sorted(set(self.expected_seeds) - set(self.seeds))

    @property
    def rule(self) -> str | None:
        return self.setting.groups if self.setting else None

    @property
    def selection_on_test(self) -> list[str]:
        return sorted({w for r in self.runs for w in r.selection_on_test})

    def per_seed(self, metric: str) -> dict[int, float]:
        """seed → metric in percent, for the seeds where it is defined."""
        return {
            r.seed: 100 * float(r.metrics[metric]) for r in self.runs if r.metrics.get(metric) is not None
        }

    def stat(self, metric: str) -> Stat | None:
        """None when not run; a Stat with no values when the metric is undefined (empty group)."""
        if not self.runs:
            return None
        return Stat(list(self.per_seed(metric).values()), len(self.runs))

    def mean(self, metric: str) -> float | None:
        s = self.stat(metric)
        return None if s is None else s.mean

    def comparable(self, metric: str) -> bool:
        """Whether ``metric`` may be set beside the paper's figure: avg always, a group only when this entry's
        classes were grouped by the paper's rule."""
        return metric not in GROUP_METRICS or self.paper_groups is None or self.rule == self.paper_groups

    def delta(self, metric: str) -> float | None:
        """Reproduced − reported (points); None when either is absent or the groups differ."""
        ours, theirs = self.mean(metric), self.reported.get(metric)
        if ours is None or theirs is None or not self.comparable(metric):
            return None
        return ours - theirs.value

    def vs_baseline(self, metric: str) -> tuple[Summary, list[int]] | None:
        """The paired difference to the CE entry (points) on the seeds both ran; None without one."""
        if self.baseline is None or self.baseline is self:
            return None
        return paired(self.per_seed(metric), self.baseline.per_seed(metric))


@dataclass
class Board:
    """Every entry, per dataset, plus the reported figures of the summary datasets (paper averages)."""

    entries: dict[str, list[Entry]]
    reported: dict[tuple[str, str, str], dict[str, Reported]]
    reported_rows: list[dict[str, str]]
    reported_label: str = "no reported figures"

    def paper_entries(self, dataset: str) -> list[Entry]:
        """Reproduced entries of ``dataset`` as the paper names it, on the split of any protocol
        (``cub200-lt10`` and ``cub200-lt10-authors``)."""
        return [
            e
            for d, es in self.entries.items()
            for e in es
            if e.setting is not None and paper_dataset(d, e.setting.protocol) == dataset
        ]

    def find(self, dataset: str, row: str, backbone: str, groups: str | None = None) -> Entry | None:
        """The entry of (``dataset`` as the paper names it, row, backbone) run with ``groups`` (any rule when
        None), on the split of any protocol; the authors' protocol first."""
        cands = [
            e
            for e in self.paper_entries(dataset)
            if (e.row, e.backbone) == (row, backbone) and (groups is None or e.rule == groups)
        ]
        return min(cands, key=lambda e: _protocol_first(e.setting)) if cands else None

    def setting_fields(self, dataset: str) -> list[str]:
        """The :class:`Setting` fields that tell the dataset's reproduced rows apart (empty if they share one)."""
        return varying_fields(e.setting for e in self.entries.get(dataset, []) if e.setting is not None)

    def reproduced(self) -> list[Entry]:
        return [e for d in sorted(self.entries) for e in self.entries[d] if e.runs]


def _protocol_first(s: Setting | None) -> tuple:
    """Prefer the authors' split protocol when both ran (paper tables compare with the paper's protocol)."""
    assert s is not None
    return (s.protocol != "authors", s)


@dataclass
class Table:
    """A format-neutral table: cells are plain strings."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- loading


Key = tuple[str, str, Setting]


def group_runs(runs: Iterable[Run]) -> dict[str, dict[Key, list[Run]]]:
    """dataset → (row, backbone, setting) → runs sorted by seed; conflicting configs for one key raise."""
    out: dict[str, dict[Key, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        out[r.dataset][(r.row, r.backbone, r.setting)].append(r)
    for dataset, rows in out.items():
        for (row, backbone, setting), rs in rows.items():
            rs.sort(key=lambda r: r.seed)
            what = f"{dataset}/{row}/{backbone} ({setting.tags()})"
            hashes = {r.config_hash for r in rs}
            if len(hashes) > 1:
                raise LTBenchError(
                    f"results for {what} disagree in config ({', '.join(sorted(hashes))})",
                    "rerun the odd seeds with the same config, or move them to another --results dir",
                )
            seeds = [r.seed for r in rs]
            if len(set(seeds)) != len(seeds):
                raise LTBenchError(
                    f"results for {what} hold seed {seeds} more than once", "keep one result file per seed"
                )
    return out


def build_board(
    results: Sequence[Mapping[str, Any]],
    reported_rows: Sequence[dict[str, str]],
    reported_label: str = "no reported figures",
    paper_groups: Mapping[str, str] | None = None,
) -> Board:
    """Entries of every dataset with reproduced results; paper-only rows join the datasets we ran.
    ``paper_groups``: dataset → the grouping rule of its reported figures (default: the paper-tables data)."""
    if paper_groups is None:
        from ltbench.leaderboard.paper_spec import paper_groups_by_dataset

        paper_groups = paper_groups_by_dataset()
    grouped = group_runs(load_run(r) for r in results)
    reported = primary_reported(reported_rows)
    entries: dict[str, list[Entry]] = {}
    for dataset in sorted(grouped):
        expected = tuple(sorted({r.seed for rs in grouped[dataset].values() for r in rs}))
        paper = paper_dataset(dataset, next(iter(grouped[dataset]))[2].protocol)
        es = [
            Entry(dataset, row, bb, st, rs, reported.get((paper, row, bb), {}), expected)
            for (row, bb, st), rs in grouped[dataset].items()
        ]
        base = {(e.backbone, e.setting): e for e in es if e.row == BASELINE_ROW}
        for e in es:
            e.baseline = base.get((e.backbone, e.setting))
        ran = {(e.row, e.backbone) for e in es}
        es += [
            Entry(d, row, bb, None, [], figs, expected)
            for (d, row, bb), figs in reported.items()
            if d == paper and (row, bb) not in ran
        ]
        for e in es:
            e.paper_groups = paper_groups.get(paper)
        entries[dataset] = sorted(es, key=_rank_key)
    return Board(entries, reported, list(reported_rows), reported_label)


def paper_dataset(dataset: str, protocol: str) -> str:
    """The name the paper's figures use for a split: ``cub200-lt10-authors`` (protocol ``authors``) →
    ``cub200-lt10``; a default-protocol name is its own."""
    return dataset if protocol == "ltbench" else dataset.removesuffix(f"-{protocol}")


def load_board(results: Path, reported: Path | str | bool | None = True) -> Board:
    """The board of every result file under ``results`` and the reported CSV (see :func:`resolve_reported`)."""
    from ltbench.results import read_results

    results = Path(results)
    if not results.is_dir():
        raise LTBenchError(
            f"no result files under {results} (no such directory)",
            "run `ltbench run ...` first, or pass --results DIR",
        )
    path = resolve_reported(reported)
    return build_board(
        read_results(results), read_reported(path), path.name if path else "no reported figures"
    )


def _rank_key(e: Entry) -> tuple:
    if e.runs:
        ours = e.mean("avg")
        return (0, -(ours if ours is not None else -1.0), e.row, e.backbone, e.setting)
    theirs = e.reported.get("avg")
    return (1, -(theirs.value if theirs else -1.0), e.row, e.backbone, Setting())
