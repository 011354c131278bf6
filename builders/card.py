"""The dataset card (README.md): Hub YAML metadata that ``datasets.load_dataset`` reads, then prose.

The YAML holds the source licence, task and size categories, one ``default`` config whose ``data_files`` map
each split to its shards, and ``dataset_info`` (Image + ClassLabel features, split sizes). The prose gives the
source and its citation, the profile formula with n_max and IR, the head/medium/tail rule and its classes, a
per-class count table and how to load and verify the split. Everything comes from the manifest, so the card is
as deterministic as the manifest.
"""

from __future__ import annotations

from typing import Any

import yaml

LDAM_BIBTEX = """@inproceedings{cao2019ldam,
  title     = {Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss},
  author    = {Cao, Kaidi and Wei, Colin and Gaidon, Adrien and Arechiga, Nikos and Ma, Tengyu},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2019}
}"""


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return label
    return "1M<n<10M"


def _ranges(ids: list[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0–2, 5"``."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs) or "none"


def _selection(manifest: dict[str, Any]) -> str:
    """How the train images were chosen, by protocol."""
    seed = manifest["seed"]
    keys = "`manifest.json` lists the chosen source indices (`splits.train.source_keys`)."
    if manifest.get("protocol", "ltbench") == "ltbench":
        return (
            "Protocol `ltbench`: selection as LDAM-DRW's `IMBALANCECIFAR10.gen_imbalanced_data`: the numpy "
            f"legacy RNG is seeded once with {seed}, then for each class in LT order its pool indices are "
            f"shuffled and the first n_c kept. {keys}"
        )
    info = manifest["protocol_info"]
    text = (
        f"Protocol `authors`: the CANDLE authors' loader `{info['loader']}` ({info['reference']}), numpy "
        f"legacy RNG seeded with {seed}; classes in the loader's order, numpy 1.17-1.24 introsort for its "
        f"`np.argsort` calls. {keys}"
    )
    if "duplicates" in info:
        text += f" The draw is with replacement: {info['duplicates']:,} rows repeat an earlier image."
    if info["exact"]:
        text += " Reproduced exactly from the official source files"
        text += f" (assuming {info['assumes']})." if info.get("assumes") else "."
    else:
        text += (
            f" **Not the authors' exact image list**: {info['reason']}; this is the closest deterministic "
        )
        text += "equivalent."
    return text


def card_metadata(manifest: dict[str, Any], spec_info: dict[str, Any]) -> dict[str, Any]:
    """The YAML front matter as a dict."""
    names = manifest["class_names"]
    splits = manifest["splits"]
    total = sum(s["num_rows"] for s in splits.values())
    return {
        "license": spec_info.get("license") or "unknown",
        "pretty_name": manifest["name"],
        "task_categories": ["image-classification"],
        "task_ids": ["multi-class-image-classification"],
        "size_categories": [_size_category(total)],
        "tags": ["long-tailed", "imbalanced", "ltbench"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{s}-*.parquet"} for s in splits],
            }
        ],
        "dataset_info": {
            "features": [
                {"name": "image", "dtype": "image"},
                {
                    "name": "label",
                    "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}},
                },
            ],
            "splits": [
                {"name": s, "num_bytes": v.get("num_bytes", 0), "num_examples": v["num_rows"]}
                for s, v in splits.items()
            ],
            "download_size": sum(v.get("num_bytes", 0) for v in splits.values()),
            "dataset_size": sum(v.get("num_bytes", 0) for v in splits.values()),
        },
    }


def render_card(manifest: dict[str, Any], spec_info: dict[str, Any], repo_id: str | None = None) -> str:
    """Card text from the manifest (counts, files) and the source's description."""
    names = manifest["class_names"]
    splits = manifest["splits"]
    front = yaml.safe_dump(
        card_metadata(manifest, spec_info), sort_keys=False, allow_unicode=True, width=1000
    )
    lt = manifest.get("profile")
    lines = [f"---\n{front}---", "", f"# {manifest['name']}", ""]
    lines.append(
        f"Long-tailed split of **{spec_info['title']}** built by ltbench {manifest['ltbench_version']} "
        f"(protocol `{manifest.get('protocol', 'ltbench')}`, seed {manifest['seed']}): {len(names)} classes, "
        + ", ".join(f"{s} {v['num_rows']:,} images" for s, v in splits.items())
        + "."
    )
    lines += ["", "| split | images | files |", "|---|---|---|"]
    for s, v in splits.items():
        lines.append(f"| {s} | {v['num_rows']:,} | {len(v['files'])} Parquet shard(s) |")

    lines += source_section(
        spec_info, "the source images may not be republished; build it locally.", "the long-tailed split"
    )
    checks = manifest.get("checksums") or {}
    if checks:
        lines += [
            "",
            "Source checksums: " + "; ".join(f"`{f}` {status}" for f, status in checks.items()) + ".",
        ]
    else:
        lines += [
            "",
            "Source checksums: none verified (read from extracted files, which have no official md5).",
        ]
    if lt:
        lines += [
            "",
            "## Long-tail profile",
            "",
            f"`{lt['formula']}`",
            "",
            f"with IR = {lt['ir']:g} and n_max = {lt['n_max']:g} (rule `{lt['n_max_rule']}`, pool of "
            f"{lt['pool_size']:,} images), c running over the LT class order `profile.lt_order` "
            f"(`{lt['class_order']}`). " + _selection(manifest),
        ]
    from ltbench.overlaps import card_section as overlap_section
    from ltbench.test_dists import card_section as dists_section

    for extra in (overlap_section(manifest["source"]), dists_section(manifest.get("test_distributions"))):
        if extra:
            lines += ["", extra.rstrip()]
    notes = manifest.get("notes") or {}
    if notes:
        lines += ["", "## Source notes and deviations", ""]
        lines += [f"- **{k}**: {v}" for k, v in notes.items()]
    exp = manifest.get("expected")
    if exp:
        got = {s: splits[s]["num_rows"] for s in exp if s in splits}
        same = "equal" if got == exp else "**differ from**"
        lines += ["", f"Built counts {got} {same} the paper's (CANDLE, Table 6) {exp}."]
    groups = manifest["groups"]
    train = splits["train"]["class_counts"]
    if manifest.get("protocol") == "authors" and not lt:
        lines += ["", "Protocol `authors`: the authors' loaders read the same list files (no selection)."]
    lines += [
        "",
        "## Head / medium / tail",
        "",
        f"Rule `{groups['rule']}`: {groups['description']}.",
        "",
        "| group | classes | train images | class ids |",
        "|---|---|---|---|",
    ]
    for g in ("head", "medium", "tail"):
        ids = groups[g]
        lines.append(f"| {g} | {len(ids)} | {sum(train[i] for i in ids):,} | {_ranges(ids)} |")
    lines += ["", "## Per-class counts", "", "| label | name | " + " | ".join(splits) + " |"]
    lines.append("|---|---|" + "---|" * len(splits))
    for i, n in enumerate(names):
        lines.append(f"| {i} | {n} | " + " | ".join(str(splits[s]["class_counts"][i]) for s in splits) + " |")
    where = repo_id or f"ORG/{manifest['name']}"
    lines += [
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("{where}")  # or the path of a local copy of this folder',
        'train, test = ds["train"], ds["test"]  # image: PIL image, label: ClassLabel',
        "",
        "import ltbench",
        f'ds = ltbench.load_split("{where}")  # same object; also accepts a local build',
        "```",
        "",
        "`manifest.json` holds the source indices of every split, the per-class counts and the sha256 of",
        "every file; `ltbench verify DIR` checks a copy against it and prints OK or what differs.",
        "",
        "## Citation",
        "",
        "```bibtex",
    ]
    if spec_info.get("bibtex"):
        lines += [spec_info["bibtex"].strip(), ""]
    lines += [LDAM_BIBTEX, "```", ""]
    return "\n".join(lines)


def source_section(info: dict, restriction: str, drawn_from: str) -> list[str]:
    """The card's ``## Source`` lines (citation, homepage, licence, pool) for one source's registry info."""
    lines = ["", "## Source", ""]
    if info.get("citation"):
        lines.append(f"{info['citation']}.")
    if info.get("homepage"):
        lines += ["", f"Homepage: <{info['homepage']}>"]
    lines += ["", f"Licence of the source images: `{info.get('license') or 'unknown'}`."]
    if not info.get("redistributable", True):
        lines += ["", f"**Licence restriction:** {restriction}"]
    if info.get("pool_definition"):
        lines += ["", f"Pool {drawn_from} is drawn from: {info['pool_definition']}."]
    return lines
