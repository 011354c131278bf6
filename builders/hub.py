"""Publishing a source's built splits to the Hugging Face Hub as one dataset repo, and fetching them back.

One repo per source: every built split of the source under ``--data`` (each IR, each protocol) becomes a config
of the repo, named ``ir10``, ``ir100``, ``ir10-authors``… (``default`` / ``authors`` for sets that are
long-tailed already). Each config's folder is its split directory exactly as built (Parquet shards, the split's
own card and ``manifest.json``), so ``ltbench verify`` checks a downloaded config; the repo's ``README.md`` is
one card whose YAML ``configs:`` maps every config to its shards, so ``datasets.load_dataset("ORG/NAME", "ir10")``
reads it with no loading script. The default config is the paper's IR.

Re-publishing compares the repo's files (``HfApi.list_repo_tree``: the sha256 of LFS files, the git blob id of
the others) with the local tree and commits only what differs; nothing changed means no commit. Configs on the
Hub that are not built locally are kept (their files untouched, their manifest read back for the card).

The token comes from the environment (``HF_TOKEN``) or the Hub's own login (``hf auth login``), resolved by
``huggingface_hub`` itself: ltbench never reads, prints or stores it. Sources whose licence forbids
republishing are refused unless the user states they hold the rights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ltbench.builders.build import MANIFEST, read_manifest
from ltbench.builders.card import LDAM_BIBTEX, _ranges, _size_category, card_metadata, source_section
from ltbench.builders.profile import FORMULA, ir_tag
from ltbench.builders.verify import verify_split

from ltbench.errors import LTBenchError
from ltbench.hub_download import CARD, REPO_ID, download_split, is_repo_id  # noqa: F401  (fetching: core)

DEFAULT_PROTOCOL = "ltbench"
FIXED_CONFIG = "default"  # config name of a set that is long-tailed already (no IR)
ALIAS_PREFIX = "r-"  # what other LT repos on the Hub call an IR config (``r-10``, ``r-100``)
CANDLE_BIBTEX = """@misc{kim2024candle,
  title         = {Long-Tailed Recognition on Binary Networks by Calibrating A Pre-trained Model},
  author        = {Kim, Jihun and Kim, Dahyun and Jung, Hyungrok and Oh, Taeil and Choi, Jonghyun},
  year          = {2024},
  eprint        = {2404.00285},
  archivePrefix = {arXiv}
}"""


def check_repo_id(repo_id: str) -> str:
    if not is_repo_id(repo_id):
        raise LTBenchError(f"{repo_id!r} is not a Hub repo id", "use ORG/NAME, e.g. my-org/cifar10-lt")
    return repo_id


def redistributable(manifest: dict) -> tuple[bool, str]:
    """(may the images be republished, licence) from the manifest, or the registry for older manifests."""
    info = source_info(manifest)
    return bool(info.get("redistributable", True)), str(info.get("license", "unknown"))


def source_info(manifest: dict) -> dict[str, Any]:
    """The source's description stored in the manifest (the registry's for manifests older than that)."""
    info = manifest.get("source_info")
    if info is None:
        from ltbench.builders.build import spec_info

        from ltbench.registry import DATASETS

        info = spec_info(DATASETS.get(manifest["source"]))
    return info


def check_rights(name: str, title: str, allowed: bool, license: str, i_have_the_rights: bool) -> None:
    if not allowed and not i_have_the_rights:
        raise LTBenchError(
            f"{name} holds images of {title}, whose licence ({license}) does not allow republishing them",
            "publish it only if you hold the rights to, by adding --i-have-the-rights",
        )


# -- configs ----------------------------------------------------------------------------------------


def protocol_of(manifest: dict) -> str:
    """The split protocol a build records (``ltbench`` when it records none)."""
    p = manifest.get("protocol") or DEFAULT_PROTOCOL
    return str(p.get("name", DEFAULT_PROTOCOL) if isinstance(p, dict) else p)


def config_name(manifest: dict) -> str:
    """``ir10``, ``ir100``, ``ir10-authors``; ``default`` / ``authors`` for a set that is LT already."""
    profile = manifest.get("profile")
    protocol = protocol_of(manifest)
    if not profile:
        return FIXED_CONFIG if protocol == DEFAULT_PROTOCOL else protocol
    base = f"ir{ir_tag(profile['ir'])}"
    return base if protocol == DEFAULT_PROTOCOL else f"{base}-{protocol}"


@dataclass
class Config:
    """One config of the repo: its manifest and where its files are (a local split dir, or the Hub only)."""

    name: str
    manifest: dict[str, Any]
    manifest_sha256: str
    path: Path | None = None  # None: published before and not built locally; its files stay as they are

    @property
    def ir(self) -> float | None:
        return (self.manifest.get("profile") or {}).get("ir")

    @property
    def protocol(self) -> str:
        return protocol_of(self.manifest)


def _local_config(split_dir: Path) -> Config:
    manifest = read_manifest(split_dir)
    sha = hashlib.sha256((split_dir / MANIFEST).read_bytes()).hexdigest()
    return Config(config_name(manifest), manifest, sha, split_dir)


def local_configs(source: str, data_root: Path) -> list[Config]:
    """Every build of ``source`` under ``data_root`` (or the one split directory ``source`` names)."""
    given = Path(source)
    if (given / MANIFEST).exists():
        return [_local_config(given)]
    root = Path(data_root)
    dirs = sorted(p.parent for p in root.glob(f"*/{MANIFEST}")) if root.is_dir() else []
    configs = [c for c in map(_local_config, dirs) if c.manifest["source"] == source]
    if not configs:
        raise LTBenchError(
            f"no build of {source!r} under {root}",
            f"build it first (`ltbench build {source} --ir 10 --out {root}`), or pass --data DIR",
        )
    seen: dict[str, Path] = {}
    for c in configs:
        if c.name in seen:
            raise LTBenchError(
                f"{seen[c.name]} and {c.path} are both config {c.name} of {source}",
                "keep one of them under --data (e.g. remove the one built with another seed)",
            )
        seen[c.name] = c.path
    return configs


def _sort_key(c: Config) -> tuple:
    return (c.ir is None, c.ir or 0, c.protocol != DEFAULT_PROTOCOL, c.protocol)


def default_config(configs: list[Config], paper_ir: float | None) -> str:
    """The paper's IR under the default protocol; else the smallest IR under it; else the first config."""
    ordered = sorted(configs, key=_sort_key)
    plain = [c for c in ordered if c.protocol == DEFAULT_PROTOCOL]
    for c in plain:
        if paper_ir is not None and c.ir == paper_ir:
            return c.name
    return (plain or ordered)[0].name


def aliases(configs: list[Config]) -> dict[str, str]:
    """``r-10`` → ``ir10``: the names other LT repos use for the default-protocol IR configs."""
    return {
        f"{ALIAS_PREFIX}{ir_tag(c.ir)}": c.name
        for c in sorted(configs, key=_sort_key)
        if c.ir is not None and c.protocol == DEFAULT_PROTOCOL
    }


# -- the card ---------------------------------------------------------------------------------------


def repo_metadata(configs: list[Config], info: dict[str, Any], default: str) -> dict[str, Any]:
    """The repo card's YAML: one ``configs`` entry and one ``dataset_info`` entry per config."""
    yaml_configs, infos, sizes = [], [], []
    for c in sorted(configs, key=_sort_key):
        meta = card_metadata(c.manifest, info)
        entry: dict[str, Any] = {"config_name": c.name}
        if c.name == default:
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": f"{c.name}/{s}-*.parquet"} for s in _splits(c.manifest)]
        yaml_configs.append(entry)
        infos.append({"config_name": c.name, **meta["dataset_info"]})
        sizes.append(sum(s["num_rows"] for s in c.manifest["splits"].values()))
    return {
        "license": info.get("license") or "unknown",
        "pretty_name": f"{info.get('title') or configs[0].manifest['source']} long-tailed (ltbench)",
        "task_categories": ["image-classification"],
        "task_ids": ["multi-class-image-classification"],
        "size_categories": [_size_category(max(sizes))],
        "tags": ["long-tailed", "imbalanced", "ltbench"],
        "configs": yaml_configs,
        "dataset_info": infos,
    }


def _rule(rule: Any) -> str:
    """An n_max rule for the card: ``rule `max``` or ``fixed`` (a number)."""
    return "fixed" if isinstance(rule, (int, float)) else f"rule `{rule}`"


def _splits(manifest: dict) -> list[str]:
    """The manifest's split names, ``train`` first (manifests store them sorted)."""
    return sorted(manifest["splits"], key=lambda s: (s != "train", s))


def _groups(manifest: dict) -> tuple[str, dict[str, list[int]]]:
    g = manifest.get("groups") or {}
    classes = g.get("classes") or {k: g[k] for k in ("head", "medium", "tail") if k in g}
    return str(g.get("rule", "unknown")), classes


def _config_section(c: Config, default: str) -> list[str]:
    m = c.manifest
    splits = {s: m["splits"][s] for s in _splits(m)}
    names = m["class_names"]
    lt = m.get("profile")
    title = f"### `{c.name}`" + (" (default)" if c.name == default else "")
    lines = [title, ""]
    lines.append(
        f"Build `{m['name']}`, seed {m['seed']}, protocol `{c.protocol}`, ltbench {m.get('ltbench_version', '?')}; "
        + ", ".join(f"{s} {v['num_rows']:,} images" for s, v in splits.items())
        + "."
    )
    if lt:
        lines += [
            "",
            f"Profile `{lt.get('formula', FORMULA)}` with IR = {lt['ir']:g}, n_max = {lt['n_max']:g} "
            f"({_rule(lt['n_max_rule'])}), class order `{lt.get('class_order', 'label')}`, "
            f"pool of {lt['pool_size']:,} images.",
        ]
    rule, classes = _groups(m)
    train = splits["train"]["class_counts"]
    lines += [
        "",
        f"Head / medium / tail (rule `{rule}`):",
        "",
        "| group | classes | train images | class ids |",
    ]
    lines.append("|---|---|---|---|")
    for g in ("head", "medium", "tail"):
        ids = classes.get(g, [])
        lines.append(f"| {g} | {len(ids)} | {sum(train[i] for i in ids):,} | {_ranges(ids)} |")
    lines += [
        "",
        f"`{c.name}/manifest.json` sha256 `{c.manifest_sha256}`: the source index of every image, the "
        f"per-class counts and the sha256 of every file; `{c.name}/README.md` is the build's own card.",
        "",
        "<details><summary>Per-class counts</summary>",
        "",
        "| label | name | " + " | ".join(splits) + " |",
        "|---|---|" + "---|" * len(splits),
    ]
    for i, n in enumerate(names):
        lines.append(f"| {i} | {n} | " + " | ".join(str(splits[s]["class_counts"][i]) for s in splits) + " |")
    lines += ["", "</details>", ""]
    return lines


def repo_card(configs: list[Config], default: str, repo_id: str | None = None) -> str:
    """The repo's README.md: YAML metadata for ``datasets``, then the source, each config and how to load."""
    info = source_info(configs[0].manifest)
    front = yaml.safe_dump(
        repo_metadata(configs, info, default), sort_keys=False, allow_unicode=True, width=1000
    )
    ordered = sorted(configs, key=_sort_key)
    names = configs[0].manifest["class_names"]
    where = repo_id or "ORG/NAME"
    title = info.get("title") or configs[0].manifest["source"]
    lines = [f"---\n{front}---", "", f"# {title}: long-tailed splits", ""]
    lines.append(
        f"Long-tailed splits of **{title}** ({len(names)} classes) built by ltbench, one config per "
        f"imbalance ratio (IR) and split protocol. Default config: `{default}`."
    )
    lines += [
        "",
        "| config | IR | protocol | seed | n_max (rule) | " + "images per split |",
        "|---|---|---|---|---|---|",
    ]
    for c in ordered:
        lt = c.manifest.get("profile") or {}
        n_max = f"{lt['n_max']:g} ({_rule(lt['n_max_rule'])})" if lt else "—"
        ir = f"{c.ir:g}" if c.ir is not None else "—"
        counts = ", ".join(f"{s} {c.manifest['splits'][s]['num_rows']:,}" for s in _splits(c.manifest))
        lines.append(f"| `{c.name}` | {ir} | `{c.protocol}` | {c.manifest['seed']} | {n_max} | {counts} |")
    alias = aliases(configs)
    if alias:
        lines += [
            "",
            "Other long-tailed repos on the Hub name these configs "
            + ", ".join(f"`{a}`" for a in alias)
            + ": here they are "
            + ", ".join(f"`{a}` = `{n}`" for a, n in alias.items())
            + " (same data, one copy).",
        ]
    lines += ["", "## Load", "", "```python", "import datasets", ""]
    lines.append(f'ds = datasets.load_dataset("{where}", "{default}")  # image: PIL image, label: ClassLabel')
    lines += ["", "import ltbench", "", f'ds = ltbench.load_split("{where}", config="{default}")', "```", ""]
    lines.append(
        "`ltbench verify` checks a downloaded config folder against its `manifest.json` and prints OK or "
        "what differs."
    )
    lines += source_section(
        info, "published by a holder of the rights (`--i-have-the-rights`).", "the long-tailed train split"
    )
    lines += ["", "## Configs", ""]
    for c in ordered:
        lines += _config_section(c, default)
    lines += ["## Citation", "", "```bibtex"]
    if info.get("bibtex"):
        lines += [info["bibtex"].strip(), ""]
    lines += [CANDLE_BIBTEX, "", LDAM_BIBTEX, "```", ""]
    return "\n".join(lines)


# -- the repo tree ----------------------------------------------------------------------------------


def repo_tree(configs: list[Config], card: str) -> dict[str, Path | bytes]:
    """Repo path → its content (a local file, or bytes) for the configs built locally and the card."""
    tree: dict[str, Path | bytes] = {CARD: card.encode("utf-8")}
    for c in configs:
        if c.path is None:
            continue
        for name in [*c.manifest["files"], MANIFEST]:
            tree[f"{c.name}/{name}"] = c.path / name
    return tree


def _content(v: Path | bytes) -> bytes:
    return v if isinstance(v, bytes) else Path(v).read_bytes()


def write_tree(tree: dict[str, Path | bytes], out: Path) -> Path:
    """Write the repo tree into ``out`` (created; refused if it holds anything), for ``--dry-run``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise LTBenchError(f"{out} is not empty", "give --dry-run a new or empty directory")
    for path, v in sorted(tree.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(v, bytes):
            target.write_bytes(v)
        else:
            shutil.copyfile(v, target)
    return out


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's content (what the Hub reports for files not stored in LFS)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_sha256(entry: Any) -> str | None:
    lfs = getattr(entry, "lfs", None)
    if lfs is None:
        return None
    return lfs["sha256"] if isinstance(lfs, dict) else lfs.sha256


def unchanged(local: bytes, remote: Any) -> bool:
    """Whether a remote file entry (``list_repo_tree``) holds exactly ``local``."""
    sha = _lfs_sha256(remote)
    if sha is not None:
        return sha == hashlib.sha256(local).hexdigest()
    return getattr(remote, "blob_id", None) == git_blob_id(local)


def plan_commit(
    tree: dict[str, Path | bytes], remote: dict[str, Any], configs: list[Config]
) -> tuple[list[str], list[str]]:
    """(paths to upload, paths to delete): new or changed files; remote files in a local config's folder that
    the build no longer has, and a single-split layout's root shards and manifest from an older publish."""
    upload = [p for p, v in sorted(tree.items()) if p not in remote or not unchanged(_content(v), remote[p])]
    local = {c.name for c in configs if c.path is not None}
    delete = []
    for p in sorted(remote):
        if p in tree:
            continue
        folder = p.split("/", 1)[0] if "/" in p else None
        if folder in local or (folder is None and (p.endswith(".parquet") or p == MANIFEST)):
            delete.append(p)
    return upload, delete


def _remote_files(api, repo_id: str) -> dict[str, Any]:
    entries = api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)
    return {e.path: e for e in entries if hasattr(e, "blob_id")}


def _remote_configs(api, repo_id: str, remote: dict[str, Any], local: list[Config]) -> list[Config]:
    """Configs the repo has (``<name>/manifest.json``) that are not built locally, read back for the card."""
    have = {c.name for c in local}
    source = local[0].manifest["source"]
    kept = []
    for p in sorted(remote):
        folder, _, rest = p.partition("/")
        if rest != MANIFEST or folder in have:
            continue
        path = api.hf_hub_download(repo_id, p, repo_type="dataset")
        data = Path(path).read_bytes()
        manifest = json.loads(data)
        if manifest.get("source") != source:
            raise LTBenchError(
                f"{repo_id} holds {folder}/ of source {manifest.get('source')!r}, not {source!r}",
                "publish each source to its own repo",
            )
        kept.append(Config(folder, manifest, hashlib.sha256(data).hexdigest(), None))
    return kept


def _hub_error(repo_id: str, e: Exception) -> LTBenchError:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return LTBenchError(
        f"the Hub refused the upload to {repo_id}: {first}",
        "check the repo id and that your token may write to it",
    )


@dataclass
class PublishReport:
    url: str  # the repo URL, or the dry-run directory
    configs: list[str]
    default: str
    uploaded: list[str]
    deleted: list[str]


def _paper_ir(manifest: dict) -> float | None:
    from ltbench.registry import DATASETS

    source = manifest["source"]
    return DATASETS.get(source).paper_ir if source in DATASETS else None


def publish(
    source: str | Path,
    repo_id: str,
    data_root: Path = Path("data"),
    private: bool = False,
    i_have_the_rights: bool = False,
    commit_message: str | None = None,
    dry_run: Path | None = None,
) -> PublishReport:
    """Publish every build of ``source`` under ``data_root`` (or one split directory) as configs of the dataset
    repo ``repo_id`` (created if needed), uploading only what differs from the repo; with ``dry_run``, write the
    repo tree into that directory instead (no network, no token)."""
    check_repo_id(repo_id)
    configs = local_configs(str(source), data_root)
    first = configs[0].manifest
    allowed, license = redistributable(first)
    check_rights(first["source"], first.get("title", first["source"]), allowed, license, i_have_the_rights)
    for c in configs:
        problems = verify_split(c.path)
        if problems:
            raise LTBenchError(
                f"{c.path} does not match its manifest ({problems[0]}; {len(problems)} difference(s))",
                f"run `ltbench verify {c.path}`, then rebuild it",
            )
    paper_ir = _paper_ir(first)
    if dry_run is not None:
        default = default_config(configs, paper_ir)
        tree = repo_tree(configs, repo_card(configs, default, repo_id))
        write_tree(tree, dry_run)
        return PublishReport(str(dry_run), [c.name for c in configs], default, sorted(tree), [])

    import huggingface_hub
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import HfHubHTTPError

    if huggingface_hub.get_token() is None:
        raise LTBenchError(
            "no Hugging Face token found", "set HF_TOKEN or run `hf auth login` with a token that may write"
        )
    api = huggingface_hub.HfApi()
    try:
        url = str(api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
        remote = _remote_files(api, repo_id)
        every = configs + _remote_configs(api, repo_id, remote, configs)
        default = default_config(every, paper_ir)
        tree = repo_tree(every, repo_card(every, default, repo_id))
        upload, delete = plan_commit(tree, remote, every)
        if upload or delete:
            ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=_as_upload(tree[p])) for p in upload]
            ops += [CommitOperationDelete(path_in_repo=p) for p in delete]
            names = ", ".join(c.name for c in configs)
            api.create_commit(
                repo_id=repo_id,
                repo_type="dataset",
                operations=ops,
                commit_message=commit_message or f"ltbench: {first['source']} configs {names}",
            )
    except HfHubHTTPError as e:
        raise _hub_error(repo_id, e) from None
    return PublishReport(url, [c.name for c in every], default, upload, delete)


def _as_upload(v: Path | bytes) -> str | bytes:
    return v if isinstance(v, bytes) else str(v)
