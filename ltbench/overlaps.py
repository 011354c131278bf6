"""Known overlaps between pretrained weights' training data and a source's test images.

Two registries, each fact with its citation:

- ``CORPUS``: which data a named teacher encoder / backbone weights was pretrained on;
- ``OVERLAPS``: per (source, corpus), what of the source's test data the corpus is known to contain.

A result whose teacher (or pretrained student weights) saw its test images carries ``teacher_overlap.flag``;
the dataset card of an overlapping source says which corpora overlap. Weights without a known corpus (a user's
checkpoint file, the digits teacher trained on the disjoint ``pretrain`` split) carry no flag, and the result
says why. Absence of an entry means "no overlap reported to ltbench", not "proved disjoint".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

IMAGENET_1K = "imagenet-1k"
IMAGENET_21K = "imagenet-21k"
DIGITS_PRETRAIN = "digits-pretrain"

#: Pretraining corpus of each teacher encoder ltbench knows (``ltbench.teachers.pretrained_encoder``).
CORPUS = {
    "resnet152": IMAGENET_1K,  # torchvision ResNet152_Weights.IMAGENET1K_* (ILSVRC-2012 train)
    "efficientnetv2-m-in21k": IMAGENET_21K,  # timm tf_efficientnetv2_m.in21k (ImageNet-21k)
    "digits": DIGITS_PRETRAIN,  # the digits `pretrain` split: 30/class, disjoint from test and train
}
#: Markers of a named weights string (torchvision enums ``IMAGENET1K_V2``, timm tags ``.in1k`` / ``.in21k``).
NAME_MARKERS = (
    ("in21k", IMAGENET_21K),
    ("imagenet21k", IMAGENET_21K),
    ("in1k", IMAGENET_1K),
    ("imagenet1k", IMAGENET_1K),
    ("imagenet", IMAGENET_1K),
)


@dataclass(frozen=True)
class Overlap:
    what: str  # which of the source's data the corpus holds
    cite: str  # where the fact comes from


_DOGS = Overlap(
    "Stanford Dogs is built from ImageNet: its 120 classes are ImageNet dog synsets and its images "
    "(train and test) are ImageNet images",
    "Khosla, Jayadevaprakash, Yao & Fei-Fei, Novel Dataset for Fine-Grained Image Categorization: Stanford "
    "Dogs, CVPR FGVC workshop (2011), (its images and annotations are taken from ImageNet)",
)
_CUB = Overlap(
    "CUB-200-2011 test images overlap ImageNet (both collected from Flickr)",
    "Caltech-UCSD Birds-200-2011 page (vision.caltech.edu/datasets/cub_200_2011): 'Images in this dataset "
    "overlap with images in ImageNet. Exercise caution when using networks pretrained with ImageNet ... as "
    "the test set of CUB may overlap with the training set of the original network'",
)
#: (source, corpus) → the known overlap of the source's test data with the corpus.
OVERLAPS: dict[tuple[str, str], Overlap] = {
    ("dogs", IMAGENET_1K): _DOGS,
    ("dogs", IMAGENET_21K): _DOGS,
    ("cub200", IMAGENET_1K): _CUB,
    ("cub200", IMAGENET_21K): _CUB,
}


def corpus_of(weights: str) -> str | None:
    """The corpus of a teacher name or weights string; None for a local file or an unknown name."""
    from ltbench.backbones.pretrained import is_weights_file

    if weights in CORPUS:
        return CORPUS[weights]
    if is_weights_file(weights):
        return None
    low = weights.lower().replace("_", "").replace("-", "")
    for marker, corpus in NAME_MARKERS:
        if marker in low:
            return corpus
    return None


def source_overlaps(source: str) -> dict[str, dict[str, str]]:
    """Corpus → overlap (``what``, ``cite``) for ``source``'s test data."""
    return {c: asdict(o) for (s, c), o in OVERLAPS.items() if s == source}


def check(source: str, used: dict[str, str]) -> dict[str, Any]:
    """``result["teacher_overlap"]`` for a run on ``source`` that used ``used`` (role → weights name)."""
    entries = []
    for role, weights in used.items():
        corpus = corpus_of(weights)
        hit = OVERLAPS.get((source, corpus)) if corpus else None
        entries.append(
            {
                "role": role,
                "weights": weights,
                "corpus": corpus or "unknown (a user checkpoint or an unregistered name: no known overlap)",
                "overlap": asdict(hit) if hit else None,
            }
        )
    return {"flag": any(e["overlap"] for e in entries), "weights": entries}


def _teacher_record(records: dict[str, Any]) -> dict[str, Any] | None:
    """``records["teacher"]`` of a run, or of a teacher method's own records (DiVE*: CANDLE's teacher, in
    ``records["dive_teacher"]["records"]``)."""
    teacher = records.get("teacher")
    if isinstance(teacher, dict) and (teacher.get("weights") or teacher.get("encoder")):
        return teacher
    nested = (
        v["records"] for v in records.values() if isinstance(v, dict) and isinstance(v.get("records"), dict)
    )
    return next((t for r in nested if (t := _teacher_record(r)) is not None), None)


def used_weights(records: dict[str, Any], config: dict[str, Any]) -> dict[str, str]:
    """Pretrained weights a run used: the teacher encoder (``records["teacher"]``) and student ``weights``."""
    used = {}
    teacher = _teacher_record(records)
    if teacher is not None:
        used["teacher"] = str(teacher.get("weights") or teacher["encoder"])  # a checkpoint file wins
    if config.get("weights"):
        used["student"] = str(config["weights"])
    return used


def card_section(source: str) -> str:
    """Markdown for the dataset card of ``source`` (empty when no overlap is known)."""
    found = source_overlaps(source)
    if not found:
        return ""
    teachers = sorted(n for n, c in CORPUS.items() if c in found)
    first = next(iter(found.values()))
    return (
        "## Teacher overlap\n\n"
        f"**Flag:** {first['what']} ({first['cite']}). Pretrained weights on {', '.join(sorted(found))} — "
        f"ltbench's teachers {', '.join(teachers)} — may have seen this test set: results that use them "
        "carry `teacher_overlap.flag`.\n"
    )
