"""The dataset card (README.md): Hub YAML metadata that ``datasets.load_dataset`` reads, then prose."""

from __future__ import annotations

from typing import Any

import yaml


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


def render_card(manifest: dict[str, Any], spec_info: dict[str, Any]) -> str:
    """Card text from the manifest (counts, files) and the source's description."""
    names = manifest["class_names"]
    splits = manifest["splits"]
    total = sum(s["num_rows"] for s in splits.values())
    meta = {
        "license": spec_info["license"],
        "task_categories": ["image-classification"],
        "size_categories": [_size_category(total)],
        "pretty_name": manifest["name"],
        "tags": ["long-tailed", "ltbench"],
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
            "splits": [{"name": s, "num_examples": v["num_rows"]} for s, v in splits.items()],
        },
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    lt = manifest.get("profile")
    lines = [f"---\n{front}---", "", f"# {manifest['name']}", ""]
    lines.append(
        f"Long-tailed split of **{spec_info['title']}** built by "
        f"[ltbench](https://github.com/) {manifest['ltbench_version']} (seed {manifest['seed']})."
    )
    if spec_info.get("citation"):
        lines += ["", f"Source: {spec_info['citation']}"]
    if spec_info.get("homepage"):
        lines += ["", f"Homepage: {spec_info['homepage']}"]
    if not spec_info.get("redistributable", True):
        lines += ["", "**Licence restriction:** the source images may not be republished; build it locally."]
    if spec_info.get("pool_definition"):
        lines += ["", f"Pool: {spec_info['pool_definition']}"]
    if lt:
        lines += [
            "",
            "## Long-tail profile",
            "",
            f"`{lt['formula']}` with IR = {lt['ir']:g}, n_max = {lt['n_max']:g} (rule `{lt['n_max_rule']}`),",
            "selection as LDAM-DRW: numpy legacy RNG seeded once, per class in label order a shuffle of that",
            "class's pool indices, first n_c kept.",
        ]
    exp = manifest.get("expected")
    if exp:
        got = {s: splits[s]["num_rows"] for s in exp if s in splits}
        lines += ["", f"Paper (Table 6) counts: {exp}; built: {got}."]
    groups = manifest["groups"]
    lines += [
        "",
        "## Head / medium / tail",
        "",
        f"Rule `{groups['rule']}`: {groups['description']}",
        "",
        "| group | classes |",
        "|---|---|",
    ]
    for g in ("head", "medium", "tail"):
        lines.append(f"| {g} | {len(groups['classes'][g])} |")
    lines += ["", "## Per-class counts", "", "| label | name | " + " | ".join(splits) + " |"]
    lines.append("|---|---|" + "---|" * len(splits))
    for i, n in enumerate(names):
        lines.append(f"| {i} | {n} | " + " | ".join(str(splits[s]["class_counts"][i]) for s in splits) + " |")
    lines += [
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("path/or/ORG/{manifest["name"]}")',
        "# or: import ltbench; ds = ltbench.load_split(...)",
        "```",
        "",
        "`manifest.json` lists the source indices of every split and the sha256 of every file;",
        "`ltbench verify DIR` checks a copy against it.",
        "",
    ]
    return "\n".join(lines)
