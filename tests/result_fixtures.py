"""Hand-written result files for the leaderboard and plot tests, built as :class:`ltbench.results.Result` (the
type ``ltbench.run.run_one`` writes), so the fixtures cannot drift from the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ltbench.results import Result, result_path, write_result

COUNTS = [100, 60, 30, 20, 10, 5]  # thirds: head {0, 1}, medium {2, 3}, tail {4, 5}
GROUPS = {"head": [0, 1], "medium": [2, 3], "tail": [4, 5]}


def make_result(
    dataset: str,
    row: str,
    seed: int,
    per_class: list[float | None],
    backbone: str = "reactnet-a",
    config: dict[str, Any] | None = None,
    counts: list[int] | None = None,
    groups: dict[str, list[int]] | None = None,
    rule: str = "thirds",
    records: dict[str, Any] | None = None,
    protocol: str = "ltbench",
    inference: dict[str, Any] | None = None,
    stages: list[dict[str, Any]] | None = None,
    selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A result whose metrics follow from ``per_class`` exactly (group = mean of its classes)."""
    counts = counts or COUNTS
    groups = groups if groups is not None else GROUPS
    config = config or {"epochs": 10, "lr": 0.01}

    def mean(cs):
        vals = [per_class[c] for c in cs if per_class[c] is not None]
        return sum(vals) / len(vals) if vals else None

    return Result(
        dataset=dataset,
        source=dataset.split("-")[0],
        method=row.split("[")[0],
        row=row,
        backbone=backbone,
        binary=True,
        recipe="binary",
        family="small",
        protocol=protocol,
        seed=seed,
        config=config,
        metrics={
            "avg": mean(range(len(per_class))),
            "top1": mean(range(len(per_class))),
            "head": mean(groups["head"]),
            "medium": mean(groups["medium"]),
            "tail": mean(groups["tail"]),
            "ece": 0.05,
            "tail_as_head": 0.25 if groups["tail"] else None,
            "medium_as_head": 0.1 if groups["medium"] else None,
            "tail_as_medium": 0.2 if groups["tail"] else None,
        },
        per_class_accuracy=per_class,
        train_counts=counts,
        grouping={"rule": rule, "classes": groups},
        inference=inference or {"packed": "auto", "path": "float"},
        runtime={"device": "cpu", "world_size": 1, "amp": False},
        stages=stages if stages is not None else [{"name": "fit", "train_images": sum(counts)}],
        selection=selection,
        timings={"fit_s": 1.0, "eval_s": 0.1},
        environment={
            "ltbench": "0.1.0",
            "python": "3.12.0",
            "torch": "2.4.0",
            "device": "cpu",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
        },
        records=records or {},
    ).to_dict()


def write(results: Path, result: dict[str, Any]) -> Path:
    path = result_path(results, result["dataset"], result["row"], result["backbone"], result["seed"])
    write_result(path, result)
    return path


def standard_results(results: Path) -> None:
    """cifar10-lt100: candle (3 seeds), tau_norm (seeds 0, 1: missing 2), candle[cd] (1 seed);
    cub200-lt10: candle (seed 0, with λ and weight-norm records); shots set with an empty tail group."""
    seeds = {
        0: [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        1: [0.8, 0.8, 0.7, 0.6, 0.5, 0.3],
        2: [1.0, 0.8, 0.7, 0.6, 0.5, 0.5],
    }
    for seed, acc in seeds.items():
        write(results, make_result("cifar10-lt100", "candle", seed, acc))
    for seed in (0, 1):
        write(results, make_result("cifar10-lt100", "tau_norm", seed, [0.5] * 6))
    write(results, make_result("cifar10-lt100", "candle[cd]", 0, [0.6] * 6, config={"variant": "cd"}))
    records = {
        "lambda_per_epoch": [0.5, 0.6, 0.8, 0.9],
        "weight_norms": {
            "teacher": [1.0, 1.1, 1.2, 1.1, 1.0, 1.3],
            "student": [2.0, 2.1, 2.5, 2.2, 2.6, 3.0],
        },
    }
    write(results, make_result("cub200-lt10", "candle", 0, [0.5, 0.5, 0.4, 0.4, 0.3, 0.3], records=records))
    shots_counts = [500, 300, 150, 60, 40, 25]  # no class < 20: the tail group is empty
    shots = {"head": [0, 1, 2], "medium": [3, 4, 5], "tail": []}
    write(
        results,
        make_result(
            "imagenet-lt",
            "ce",
            0,
            [0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
            counts=shots_counts,
            groups=shots,
            rule="shots",
        ),
    )
