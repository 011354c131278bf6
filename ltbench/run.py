"""One run: resolve the config, fit the method, evaluate it, write the result JSON."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from ltbench import distributed as dist
from ltbench.config import check_backbone_args, resolve_config, resolved_recipe, to_dict
from ltbench.data import DEFAULT_DATA, open_split
from ltbench.errors import LTBenchError
from ltbench.families import get_family
from ltbench.method import Task
from ltbench.registry import BACKBONES, METHODS
from ltbench.results import Result, environment, result_path
from ltbench.seeding import seed_everything
from ltbench.stage_store import STORE_DIR


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LTBenchError(
            "--device cuda was asked for but no CUDA device is visible", "use --device cpu or auto"
        )
    return torch.device(name)


def _check_weights(backbone: str, weights: str) -> None:
    """``weights`` is a local file (any backbone) or a name the backbone's factory accepts."""
    import inspect

    from ltbench.backbones.pretrained import is_weights_file

    if (
        not is_weights_file(weights)
        and "weights" not in inspect.signature(BACKBONES.get(backbone)).parameters
    ):
        raise LTBenchError(
            f"backbone {backbone} has no named weights ({weights!r})", "pass a local file: --set weights=PATH"
        )


def default_backbone(family: str) -> str:
    return get_family(family).default_backbone


__all__ = ["resolve_config", "run_one"]  # resolve_config lives in ltbench.config (methods may call it)


def row_name(method: str, cfg: Any) -> str:
    """The leaderboard row: ``method``, or ``method[value]`` when the config declares a row field
    (``Config.ROW_FIELD``, e.g. CANDLE's ``variant``) and its value is not the field's default."""
    field_name = getattr(type(cfg), "ROW_FIELD", None)
    if field_name is None:
        return method
    default = {f.name: f.default for f in dataclasses.fields(cfg)}[field_name]
    value = getattr(cfg, field_name)
    return method if value == default else f"{method}[{value}]"


def backbone_kwargs(cfg: Any, backbone: str) -> dict[str, Any]:
    """The backbone factory's keyword arguments a config asks for (``backbone_args``, ``weights``)."""
    kwargs = check_backbone_args(backbone, dict(getattr(cfg, "backbone_args", {}) or {}))
    if getattr(cfg, "weights", None):
        _check_weights(backbone, cfg.weights)
        kwargs["weights"] = cfg.weights
    return kwargs


def split_records(
    records: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    """(stages, selection, records): methods report ``stages`` and ``selection`` under those record keys; the
    result carries them as its own fields (what the leaderboard reads) and keeps the records as reported."""
    return list(records.get("stages", [])), records.get("selection"), dict(records)


def run_one(
    method: str,
    dataset: str,
    backbone: str | None = None,
    seed: int = 0,
    sets: dict[str, str] | None = None,
    config_file: Path | None = None,
    data_root: Path = DEFAULT_DATA,
    results: Path = Path("results"),
    device: str = "auto",
    resume: bool = False,
    keep_checkpoints: bool = False,
    packed: str = "auto",
    recipe: str | None = None,
    test_dist: str | None = None,
    share_stages: bool = True,
) -> Path:
    """Train and evaluate ``method`` on built split ``dataset``; return the result file's path.

    ``share_stages``: load a stage other runs train identically from ``<results>/.stages/`` when it is there,
    else train it and put it there (:mod:`ltbench.stage_store`; the result is the same either way).

    ``packed``: evaluate binary backbones on the XNOR kernels (``auto``: where a kernel exists; ``on``; ``off``);
    the result's ``inference`` says which path produced the numbers. ``test_dist`` (``all``, ``forward10``, …)
    also evaluates on SADE's test-agnostic distributions (:mod:`ltbench.result_extras`)."""
    method_cls = METHODS.get(method)
    info = open_split(dataset, data_root)
    backbone = backbone or default_backbone(info.family)
    BACKBONES.entry(backbone)
    from ltbench.backbones import is_binary

    binary = is_binary(backbone)
    cfg = resolve_config(method, binary, info.family, config_file, sets, recipe, backbone)
    recipe_name = resolved_recipe(method, binary, config_file, recipe)
    kwargs = backbone_kwargs(cfg, backbone)  # checked before anything trains
    from ltbench.result_extras import plan_test_dists, result_extras

    dist_plan = plan_test_dists(info, test_dist)  # a bad --test-dist fails before anything trains
    row = row_name(method, cfg)
    out = result_path(results, info.name, row, backbone, seed)
    run_dir = Path(results) / ".runs" / info.name / row / backbone / f"seed{seed}"
    dev = dist.init_from_env(resolve_device(device))
    if not resume and dist.is_main():
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.parent.joinpath(f"{run_dir.name}.log").unlink(missing_ok=True)
    dist.barrier()
    store = Path(results) / STORE_DIR if share_stages else None
    task = Task(
        info=info, backbone=backbone, device=dev, seed=seed, run_dir=run_dir, resume=resume, stage_store=store
    )
    task.backbone_kwargs.update(kwargs)
    seed_everything(seed)
    from ltbench.evaluate import RESULT_METRICS, evaluate
    from ltbench.trainer import amp_active

    t0 = time.perf_counter()
    m = method_cls(cfg)
    fitted = m.fit_with_records(task)
    model = fitted.model
    t1 = time.perf_counter()
    if not dist.is_main():  # rank 0 evaluates and writes the result; the other ranks wait for it
        dist.barrier()
        return out
    from ltbench.binary.packed import prepare_eval

    eval_model, inference = prepare_eval(m, model, task, packed)
    seed_everything(seed)  # test-time steps (TADE's random views) start from the run's seed
    metrics = evaluate(m, eval_model, task)
    t2 = time.perf_counter()
    stages, selection, records = split_records({**fitted.records, **metrics["test_time_records"]})
    result = Result(
        dataset=info.name,
        source=info.manifest["source"],
        method=method,
        row=row,
        backbone=backbone,
        binary=binary,
        recipe=recipe_name,
        family=info.family,
        protocol=info.protocol,
        seed=seed,
        config=to_dict(cfg),
        metrics={k: metrics[k] for k in RESULT_METRICS},
        per_class_accuracy=metrics["per_class"],
        train_counts=task.class_counts,
        grouping={"rule": info.grouping, "classes": metrics["groups"]},
        inference=inference,
        runtime={
            "device": str(task.device),
            "world_size": dist.world_size(),
            "amp": amp_active(cfg, task.device),
        },
        stages=stages,
        selection=selection,
        timings={"fit_s": round(t1 - t0, 3), "eval_s": round(t2 - t1, 3)},
        environment={**environment(str(task.device)), "world_size": dist.world_size()},
        records=records,
        **result_extras(m, model, eval_model, task, fitted.records, inference, to_dict(cfg), dist_plan),
    )
    result.timings["extras_s"] = round(time.perf_counter() - t2, 3)
    result.write(results)
    if not keep_checkpoints:
        shutil.rmtree(run_dir, ignore_errors=True)
    dist.barrier()
    return out
