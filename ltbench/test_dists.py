"""Test-agnostic test distributions: SADE's forward-LT, uniform and backward-LT subsets of the test split.

Protocol of Zhang et al., "Self-Supervised Aggregation of Diverse Experts for Test-Agnostic Long-Tailed
Recognition" (NeurIPS 2022), code Vanint/SADE-AgnosticLT. For CIFAR (``data_loader/imbalance_cifar.py``
``get_img_num_per_cls`` / ``gen_imbalanced_data``, used by ``test_all_cifar.py`` with ``imb_factor = 1/r``):

- n_c = int(n_max · (1/r)^(k/(C−1))), k = the class's position in the training split's head-to-tail order
  (forward: the test set is long-tailed like the training set) or C−1−k (backward: flipped);
- n_max = the test images per class (SADE: ``len(test) / C``, the test split being balanced; here the smallest
  per-class test count, so that every class can supply n_max — the same for a balanced split);
- per class in label order, with one legacy numpy RNG seeded 0 (SADE's ``rand_number=0``), the class's test
  indices are shuffled and the first n_c kept; ``uniform`` is every class at n_max (the whole balanced split).

A ratio the test split is too small for is **skipped, never shrunk**: when the tail class would get no image,
or when int-truncation makes the realized head/tail ratio differ from r by more than ``TOLERANCE`` (digits' 40
per class: r = 25 gives a tail of int(1.6) = 1, a realized ratio of 40). The skipped names and the reason are
recorded beside the drawn ones.

ImageNet-LT, Places-LT and iNat-LT use SADE's published list files instead (``data_txt/<set>/<prefix>_<name>.txt``,
one ``relative/path label`` per line), imported at build time when they lie beside the source's OLTR lists.

Storage: index lists into the built ``test`` split (row order of its Parquet shards), in the manifest under
``test_distributions`` — no image is stored twice (the eleven subsets together hold ≈ 5× the test split), the
split's files, hashes, card configs and Hub layout are unchanged, and ``datasets`` users select a subset with
``ds["test"].select(manifest["test_distributions"]["distributions"]["forward10"]["indices"])``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltbench.errors import LTBenchError

RATIOS = (2, 5, 10, 25, 50)  # test_all_cifar.py's distrb: imb_factor 0.5, 0.2, 0.1, 0.04, 0.02
SEED = 0  # IMBALANCECIFAR10(rand_number=0)
TOLERANCE = 0.1  # largest relative gap between the realized and the nominal head/tail ratio
#: SADE's order of the distributions (test_all_cifar.py ``test_distribution_set``).
NAMES = (*(f"forward{r}" for r in reversed(RATIOS)), "uniform", *(f"backward{r}" for r in RATIOS))
PROTOCOL = (
    "SADE (Zhang et al., NeurIPS 2022): n_c = int(n_max * (1/r)^(k/(C-1))), k = the class's rank by train count "
    "(forward) or C-1-rank (backward); per class in label order, numpy RandomState(0) shuffle, first n_c"
)
_NAME = re.compile(r"^(forward|backward)(\d+)$")


@dataclass(frozen=True)
class SadeLists:
    """Where a source's published SADE list files are (Vanint/SADE-AgnosticLT ``data_txt/``):
    ``<source dir>/<folder>/<prefix>_<name>.txt``, indexing build split ``split``; ``key`` maps list paths
    and the split's source keys to one naming."""

    folder: str
    prefix: str
    split: str = "test"
    key: Callable[[str], str] | None = None


def parse_name(name: str) -> tuple[str, int]:
    """``forward10`` → (``forward``, 10); ``uniform`` → (``uniform``, 1)."""
    if name == "uniform":
        return "uniform", 1
    m = _NAME.match(name)
    if not m or int(m.group(2)) < 2:
        raise LTBenchError(f"unknown test distribution {name!r}", "use all, uniform, forwardR or backwardR")
    return m.group(1), int(m.group(2))


def sade_order(name: str) -> tuple[int, int]:
    """Sort key of SADE's tables: forward by falling ratio, uniform, backward by rising ratio (any ratio:
    iNat's lists are 2 and 3)."""
    direction, ratio = parse_name(name)
    return {"forward": (0, -ratio), "uniform": (1, 0), "backward": (2, ratio)}[direction]


def class_ranks(train_counts: Sequence[int], order: Sequence[int] | None = None) -> list[int]:
    """Each class's position in the head-to-tail order of the training split: ``order`` (the build profile's
    ``lt_order``, class ids head first) when given, else by train count descending, ties in label order."""
    if order is None:
        order = sorted(range(len(train_counts)), key=lambda c: (-train_counts[c], c))
    ranks = [0] * len(order)
    for k, c in enumerate(order):
        ranks[c] = k
    return ranks


def sade_counts(n_max: int, ranks: Sequence[int], ratio: float, backward: bool) -> list[int]:
    """Per-class test counts of SADE's formula, indexed by class label."""
    C = len(ranks)
    if C == 1:
        return [int(n_max)]
    out = []
    for k in ranks:
        e = (C - 1 - k) if backward else k
        out.append(int(n_max * ((1 / ratio) ** (e / (C - 1.0)))))
    return out


def why_unfit(counts: Sequence[int], ratio: float) -> str | None:
    """Why ``counts`` do not realize ``ratio`` (None when they do)."""
    tail = min(counts)
    if tail < 1:
        return f"a class would get int({max(counts)} / {ratio:g}) = 0 test images"
    realized = max(counts) / tail
    if abs(realized - ratio) > TOLERANCE * ratio:
        return (
            f"the tail class would get {tail} image(s): realized ratio {realized:g} "
            f"({max(counts)}/{tail}) is more than {TOLERANCE:.0%} off {ratio:g}"
        )
    return None


def draw(labels: np.ndarray, counts: Sequence[int], seed: int = SEED) -> list[int]:
    """Test-row indices (sorted) holding ``counts[c]`` images of each class c, drawn as SADE draws them."""
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    picked = []
    for c, n in enumerate(counts):
        idx = np.where(labels == c)[0]
        rng.shuffle(idx)
        picked.append(idx[:n])
    return sorted(int(i) for i in np.concatenate(picked)) if picked else []


def _entry(direction: str, ratio: int, labels: np.ndarray, idx: list[int], C: int) -> dict[str, Any]:
    counts = np.bincount(labels[idx], minlength=C).tolist() if idx else [0] * C
    return {
        "direction": direction,
        "ratio": ratio,
        "num_rows": len(idx),
        "class_counts": counts,
        "realized_ratio": round(max(counts) / min(counts), 4) if min(counts) > 0 else None,
        "indices": idx,
    }


def formula_distributions(
    test_labels: Sequence[int],
    train_counts: Sequence[int],
    ratios: Sequence[int] = RATIOS,
    order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """SADE's CIFAR-style subsets of a test split; ``skipped`` says which ratios it cannot realize, and why."""
    labels = np.asarray(test_labels, dtype=np.int64)
    C = len(train_counts)
    per_class = np.bincount(labels, minlength=C)
    n_max = int(per_class.min())
    ranks = class_ranks(train_counts, order)
    dists: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    empty = [c for c in range(C) if per_class[c] == 0]
    if empty:  # no subset can hold a class the test split lacks
        why = f"class {empty[0]} has no test image ({len(empty)} class(es) without one)"
        skipped = dict.fromkeys(NAMES, why)
    for name in () if empty else NAMES:
        direction, ratio = parse_name(name)
        if ratio not in (1, *ratios):
            continue
        counts = sade_counts(n_max, ranks, ratio, direction == "backward")
        reason = None if ratio == 1 else why_unfit(counts, ratio)
        if reason:
            skipped[name] = reason
            continue
        dists[name] = _entry(direction, ratio, labels, draw(labels, counts), C)
    return {
        "protocol": PROTOCOL,
        "origin": "formula",
        "seed": SEED,
        "n_max": n_max,
        "balanced_test": bool(per_class.max() == per_class.min()),
        "tolerance": TOLERANCE,
        "distributions": dists,
        "skipped": skipped,
    }


def read_sade_list(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rel, label = line.split()
            rows.append((rel, int(label)))
    return rows


def list_distributions(
    folder: Path,
    prefix: str,
    test_keys: Sequence[str],
    test_labels: Sequence[int],
    num_classes: int,
    key: Callable[[str], str] | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """SADE's published ``<prefix>_<name>.txt`` files under ``folder``, as indices into the split whose source
    keys and labels are ``test_keys``/``test_labels``; ``key`` maps list paths and split keys to one naming
    (Places-LT: Places365's ``val_256/`` names, whichever layout the build read).

    ``uniform`` is ``<prefix>_uniform.txt`` (SADE ships one for each of its sets), else the whole split.
    Every listed path must be an image of the split with the same label."""
    labels = np.asarray(test_labels, dtype=np.int64)
    C = num_classes
    key = key or (lambda k: k)
    row_of = {key(k): i for i, k in enumerate(test_keys)}
    found = sorted(Path(folder).glob(f"{prefix}_*.txt"))
    dists: dict[str, Any] = {}
    files: dict[str, str] = {}
    for path in found:
        name = path.stem[len(prefix) + 1 :]
        if name != "uniform" and not _NAME.match(name):
            continue
        direction, ratio = parse_name(name)
        idx = []
        for rel, label in read_sade_list(path):
            rel = key(rel)
            if rel not in row_of:
                raise LTBenchError(
                    f"{path.name} lists {rel}, which is not in this build's {split} split",
                    "use SADE's list files for this dataset version (data_txt/ of Vanint/SADE-AgnosticLT)",
                )
            i = row_of[rel]
            if int(labels[i]) != label:
                raise LTBenchError(
                    f"{path.name}: {rel} has label {label}, the test split has {int(labels[i])}",
                    "use SADE's list files for this dataset version",
                )
            idx.append(i)
        dists[name] = _entry(direction, ratio, labels, sorted(idx), C)
        files[name] = f"{path.name} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    if not dists:
        return {
            "origin": "none",
            "distributions": {},
            "skipped": {},
            "note": f"no SADE list ({prefix}_forwardR.txt, ...) in {folder}",
        }
    if "uniform" not in dists:
        dists["uniform"] = _entry("uniform", 1, labels, list(range(len(labels))), C)
        files["uniform"] = "the whole test split (SADE ships no uniform list for this set)"
    ordered = dict(sorted(dists.items(), key=lambda kv: sade_order(kv[0])))
    return {
        "protocol": "SADE's published list files",
        "origin": "sade-lists",
        "files": files,
        "distributions": ordered,
        "skipped": {},
    }


def for_build(
    lists: SadeLists | None,
    source_dir: Path,
    keys: Sequence[str],
    labels: Sequence[int],
    train_counts: Sequence[int],
    order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The manifest's ``test_distributions`` block of a build, over the split it indexes (``split``: ``test``,
    or ``lists.split``) whose source keys and labels are ``keys``/``labels``: from SADE's list files where the
    source has them (``SourceSpec.test_lists``), else by SADE's formula (``order``: the profile's ``lt_order``)."""
    if lists is None:
        return {**formula_distributions(labels, train_counts, order=order), "split": "test"}
    folder = Path(source_dir) / lists.folder
    block = list_distributions(folder, lists.prefix, keys, labels, len(train_counts), lists.key, lists.split)
    return {**block, "split": lists.split}


def available(block: dict[str, Any]) -> list[str]:
    return list(block.get("distributions", {}))


def select(block: dict[str, Any], spec: str) -> list[str]:
    """The distribution names ``--test-dist`` asks for (``all``, or comma-separated names)."""
    names = available(block)
    if spec == "all":
        if not names:
            raise LTBenchError("this split has no test-agnostic distributions", _fix(block))
        return names
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    for name in wanted:
        parse_name(name)
        if name not in names:
            skipped = block.get("skipped", {})
            why = skipped.get(name) or "not among this split's distributions"
            raise LTBenchError(f"test distribution {name} is not available: {why}", _fix(block))
    return wanted


def _fix(block: dict[str, Any]) -> str:
    names = available(block)
    if names:
        return f"available: all, {', '.join(names)}"
    return block.get("note", "") + " — put SADE's list files beside the source lists and rebuild"


def manifest_block(info) -> dict[str, Any]:
    """The split's distributions: from its manifest, or drawn now from its test labels (a build that predates
    them; the same function, so the same indices) — ``origin`` says which."""
    block = info.manifest.get("test_distributions")
    if block is not None:
        return block
    if not info.manifest.get("profile"):  # an imported LT set: its distributions are SADE's list files
        return {"origin": "none", "distributions": {}, "note": "this build has no SADE lists"}
    from ltbench.data import ImageSplit

    labels = ImageSplit(info, "test").labels
    order = (info.manifest.get("profile") or {}).get("lt_order")
    block = formula_distributions(labels, info.counts("train"), order=order)
    block["origin"] = "formula (drawn at run time: the manifest predates test_distributions)"
    return block


class SubsetSplit:
    """Rows ``indices`` of a split dataset (keeps ``labels`` for the code that reads them)."""

    def __init__(self, split, indices: Sequence[int]):
        self.split = split
        self.indices = list(indices)
        self.labels = np.asarray(split.labels)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.split[self.indices[i]]

    def __getitems__(self, indices: list[int]):
        from ltbench.data import fetch_batch

        return fetch_batch(self.split, [self.indices[i] for i in indices])


def evaluate_distributions(
    method, model, task, names: Sequence[str], block: dict[str, Any]
) -> dict[str, Any]:
    """One metrics block per distribution. A test-time method adapts on each: ``prepare_predict`` runs on the
    distribution's unlabelled images (as SADE's ``test_training_*.py`` does per distribution), and the records
    it returns are kept per distribution. The RNGs are reseeded with the run's seed before each, so a
    distribution's numbers do not depend on which were evaluated before it."""
    from ltbench.evaluate import RESULT_METRICS, evaluate
    from ltbench.seeding import seed_everything

    out: dict[str, Any] = {}
    try:
        for name in names:
            entry = block["distributions"][name]
            task.test_indices = entry["indices"]
            task.test_indices_split = block.get("split", "test")
            seed_everything(task.seed)
            metrics = evaluate(method, model, task)
            rec = metrics["test_time_records"]
            out[name] = {
                **{k: metrics[k] for k in RESULT_METRICS},
                "num_rows": entry["num_rows"],
                **({"records": rec} if rec else {}),
            }
    finally:
        task.test_indices, task.test_indices_split = None, "test"
    return out


def card_section(block: dict[str, Any] | None) -> str:
    """Markdown for the dataset card: the distributions, their sizes and the skipped ratios."""
    if not block or not block.get("distributions") and not block.get("skipped"):
        note = (block or {}).get("note")
        return f"## Test-agnostic distributions\n\nNone: {note}.\n" if note else ""
    lines = ["## Test-agnostic distributions", "", f"Protocol: {block.get('protocol', '')}.", ""]
    lines += ["| distribution | images | head/tail | per-class counts |", "| --- | ---: | ---: | --- |"]
    for name, d in block["distributions"].items():
        counts = d["class_counts"]
        shown = ", ".join(map(str, counts)) if len(counts) <= 20 else f"{max(counts)} … {min(counts)}"
        lines.append(f"| {name} | {d['num_rows']} | {d['realized_ratio']} | {shown} |")
    for name, why in block.get("skipped", {}).items():
        lines.append(f"| {name} | skipped | | {why} |")
    lines += [
        "",
        "Each is a list of row indices into `test` (manifest `test_distributions`); select one with "
        '`ds["test"].select(indices)`.',
        "",
    ]
    return "\n".join(lines)
