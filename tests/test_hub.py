"""Hub layout and publishing: one dataset repo per source, one config per IR and protocol.

Every build of a CIFAR-10 fixture (IR 10, IR 100, and IR 10 under ``--protocol authors``) is published
through a fake ``HfApi`` that records each call and keeps the repo's files; those files are materialised into a
directory and loaded config by config with the installed ``datasets``. No network; the token is never printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from cifar_fixtures import CIFAR10_CLASSES, run_cli, write_cifar  # noqa: E402
from ltbench.builders.build import build  # noqa: E402
from ltbench.builders.verify import verify_split  # noqa: E402

import ltbench  # noqa: E402
from ltbench.errors import LTBenchError  # noqa: E402
from ltbench.registry import DATASETS  # noqa: E402

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")
TOKEN = "hf_never_print_this_0123456789"
REPO = "my-org/cifar10-lt"
TRAIN_PER_CLASS, TEST_PER_CLASS = 30, 2
# LDAM's n_max = len(pool) / C = 30 (cifar's rule `mean`); the profile n_c = int(30 * (1/IR) ** (c / 9))
COUNTS = {ir: [int(30 * (1 / ir) ** (c / 9)) for c in range(10)] for ir in (10, 100)}
CONFIGS = ["ir10", "ir10-authors", "ir100"]  # YAML order: by IR, the default protocol first


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_cifar(
        tmp_path_factory.mktemp("src"),
        "cifar10",
        train_per_class=TRAIN_PER_CLASS,
        test_per_class=TEST_PER_CLASS,
    )


@pytest.fixture(scope="module")
def data(fx, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    spec = DATASETS.get("cifar10")
    for ir, protocol in ((10, "ltbench"), (100, "ltbench"), (10, "authors")):
        build(spec, ir, out, source_dir=fx.source_dir, verify_checksums=False, protocol=protocol)
    return out


@pytest.fixture
def data_copy(data, tmp_path):
    return Path(shutil.copytree(data, tmp_path / "data"))


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


class FakeHub:
    """Stands in for ``huggingface_hub.HfApi``: records calls and keeps the repo's files as bytes.

    ``list_repo_tree`` answers with real ``RepoFile``/``RepoFolder`` objects built from what the Hub API sends:
    Parquet files are LFS (``lfs.oid`` = sha256 of the content, ``oid`` = the pointer's git id), the others
    plain git blobs. ``create_commit`` applies ``CommitOperationAdd``/``Delete`` as the Hub does."""

    def __init__(self, fail: Exception | None = None):
        self.fail, self.calls = fail, []
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}

    def __call__(self, *args, **kwargs):  # HfApi()
        assert not args and not kwargs  # the token is left to huggingface_hub's own resolution
        return self

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))
        if self.fail:
            raise self.fail
        return f"https://huggingface.co/datasets/{repo_id}"

    def list_repo_tree(self, repo_id, **kw):
        from huggingface_hub.hf_api import RepoFile, RepoFolder

        self.calls.append(("list_repo_tree", repo_id, kw))
        assert kw == {"repo_type": "dataset", "recursive": True}
        out = []
        for p in sorted({str(Path(p).parent) for p in self.files} - {"."}):
            out.append(RepoFolder(path=p, oid="0" * 40))
        for p, b in sorted(self.files.items()):
            if p.endswith(".parquet"):
                sha = hashlib.sha256(b).hexdigest()
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(b)}\n"
                lfs = {"size": len(b), "oid": sha, "pointerSize": len(pointer)}
                out.append(RepoFile(path=p, size=len(b), oid=_git_blob(pointer.encode()), lfs=lfs))
            else:
                out.append(RepoFile(path=p, size=len(b), oid=_git_blob(b)))
        return out

    def hf_hub_download(self, repo_id, filename, repo_type, **kw):
        self.calls.append(("hf_hub_download", repo_id, filename))
        target = self.scratch / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.files[filename])
        return str(target)

    def create_commit(self, repo_id, repo_type, operations, commit_message):
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        self.calls.append(
            ("create_commit", repo_id, [(type(op).__name__, op.path_in_repo) for op in operations])
        )
        assert repo_type == "dataset" and commit_message
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                src = op.path_or_fileobj
                self.files[op.path_in_repo] = src if isinstance(src, bytes) else Path(src).read_bytes()
            else:
                assert isinstance(op, CommitOperationDelete)
                del self.files[op.path_in_repo]

    def uploaded(self) -> list[str]:
        return [p for c in self.calls if c[0] == "create_commit" for kind, p in c[2] if kind.endswith("Add")]

    def materialise(self, out: Path, patterns: list[str] | None = None) -> Path:
        for p, b in self.files.items():
            if patterns is None or any(fnmatch(p, pat) for pat in patterns):
                (out / p).parent.mkdir(parents=True, exist_ok=True)
                (out / p).write_bytes(b)
        return out


@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub

    fake = FakeHub()
    fake.scratch = tmp_path / "downloads"
    monkeypatch.setattr(huggingface_hub, "HfApi", fake)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    return fake


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def check_config(ds, manifest: dict, ir: int, fx) -> None:
    assert sorted(ds) == ["test", "train"]
    for split in ("train", "test"):
        assert ds[split].features["label"].names == CIFAR10_CLASSES
        assert type(ds[split].features["image"]).__name__ == "Image"
    assert ds["train"].num_rows == sum(COUNTS[ir])
    assert np.bincount(ds["train"]["label"], minlength=10).tolist() == COUNTS[ir]
    assert np.bincount(ds["test"]["label"], minlength=10).tolist() == [TEST_PER_CLASS] * 10
    key = int(manifest["splits"]["train"]["source_keys"][0])
    np.testing.assert_array_equal(np.asarray(ds["train"][0]["image"]), fx.image("train", key))


def test_git_blob_id_is_gits():
    from ltbench.builders.hub import git_blob_id

    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


def test_single_build_loads_with_datasets(data, fx, tmp_path):
    import datasets

    split = data / "cifar10-lt10"
    ds = datasets.load_dataset(str(split), cache_dir=str(tmp_path / "c"))
    check_config(ds, json.loads((split / "manifest.json").read_text()), 10, fx)
    ds = ltbench.load_split("cifar10-lt10", data_root=data, cache_dir=str(tmp_path / "c"))
    assert ds["train"].num_rows == sum(COUNTS[10])
    with pytest.raises(LTBenchError, match="no split 'val'"):
        ltbench.load_split(str(split), split="val")
    with pytest.raises(LTBenchError, match="no built split or Hub dataset"):
        ltbench.load_split("not a name", data_root=tmp_path)


def test_publish_every_config_then_load_each(data, fx, hub, tmp_path, capsys, monkeypatch):
    import datasets

    code, out, err = run_cli(["publish", "cifar10", "--data", data, "--repo-id", REPO, "--private"], capsys)
    assert code == 0, err
    assert TOKEN not in out + err
    assert [c[0] for c in hub.calls] == ["create_repo", "list_repo_tree", "create_commit"]
    assert hub.calls[0][2] == {"repo_type": "dataset", "private": True, "exist_ok": True}
    expected = {"README.md", ".gitattributes"}
    for name, build_dir in zip(
        CONFIGS, ["cifar10-lt10", "cifar10-lt10-authors", "cifar10-lt100"], strict=True
    ):
        expected |= {f"{name}/{f}" for f in os.listdir(data / build_dir)}
    assert set(hub.files) == expected
    assert set(hub.uploaded()) == expected - {".gitattributes"}

    repo = hub.materialise(tmp_path / "repo")
    assert datasets.get_dataset_config_names(str(repo)) == CONFIGS
    for name, build_dir, ir in [
        ("ir10", "cifar10-lt10", 10),
        ("ir10-authors", "cifar10-lt10-authors", 10),
        ("ir100", "cifar10-lt100", 100),
    ]:
        manifest = json.loads((data / build_dir / "manifest.json").read_text())
        ds = datasets.load_dataset(str(repo), name, cache_dir=str(tmp_path / "c"))
        check_config(ds, manifest, ir, fx)
        assert verify_split(repo / name) == []  # each config folder is its build, verifiable as is
    # no config named: the default one (CIFAR's paper reports both IRs: the smallest, ir10)
    default = datasets.load_dataset(str(repo), split="train", cache_dir=str(tmp_path / "c"))
    assert default.num_rows == sum(COUNTS[10])

    # ltbench.load_split(repo_id, config=...): only the network call is mocked; only that config is fetched
    import huggingface_hub

    asked = []

    def fake_snapshot(repo_id, **kw):
        asked.append((repo_id, kw["repo_type"], kw["allow_patterns"]))
        return str(hub.materialise(tmp_path / f"snap-{len(asked)}", kw["allow_patterns"]))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    train = ltbench.load_split(REPO, split="train", config="ir100", cache_dir=str(tmp_path / "c"))
    assert asked == [(REPO, "dataset", ["README.md", "ir100/*"])] and train.num_rows == sum(COUNTS[100])
    assert sorted(p.name for p in (tmp_path / "snap-1").iterdir()) == ["README.md", "ir100"]
    with pytest.raises(LTBenchError, match="no split 'val'"):
        ltbench.load_split(REPO, split="val", config="ir10")
    with pytest.raises(LTBenchError, match="no config 'r-10'"):
        ltbench.load_split(str(repo), config="r-10")
    assert ltbench.load_split(str(repo), config="ir10-authors", cache_dir=str(tmp_path / "c"))[
        "train"
    ].num_rows == sum(COUNTS[10])


def test_card_yaml_lists_every_config(data, hub, capsys):
    code, _, err = run_cli(["publish", "cifar10", "--data", data, "--repo-id", REPO], capsys)
    assert code == 0, err
    card = hub.files["README.md"].decode()
    meta = front_matter(card)
    assert [c["config_name"] for c in meta["configs"]] == CONFIGS
    assert [c.get("default", False) for c in meta["configs"]] == [True, False, False]
    for c in meta["configs"]:
        assert c["data_files"] == [
            {"split": "train", "path": f"{c['config_name']}/train-*.parquet"},
            {"split": "test", "path": f"{c['config_name']}/test-*.parquet"},
        ]
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert list(infos) == CONFIGS
    label = infos["ir100"]["features"][1]
    assert label["dtype"]["class_label"]["names"] == {str(i): n for i, n in enumerate(CIFAR10_CLASSES)}
    assert infos["ir100"]["features"][0] == {"name": "image", "dtype": "image"}
    assert {s["name"]: s["num_examples"] for s in infos["ir100"]["splits"]} == {
        "train": sum(COUNTS[100]),
        "test": 20,
    }
    assert meta["license"] == "unknown" and meta["task_categories"] == ["image-classification"]
    assert meta["size_categories"] == ["n<1K"]
    # per config: counts, n_max rule, seed, protocol, groups, manifest hash; aliases; both citations
    for name, build_dir in [("ir10", "cifar10-lt10"), ("ir100", "cifar10-lt100")]:
        sha = hashlib.sha256((data / build_dir / "manifest.json").read_bytes()).hexdigest()
        assert f"`{name}/manifest.json` sha256 `{sha}`" in card
    assert "| `ir100` | 100 | `ltbench` | 0 | 30 (rule `mean`) |" in card
    assert "| `ir10-authors` | 10 | `authors` | 0 | 30 (rule `mean`) |" in card
    assert "with IR = 100, n_max = 30 (rule `mean`), class order `label`, pool of 300 images." in card
    assert "| 9 | truck | 0 | 2 |" in card  # ir100's tail class: int(30 * 0.01) = 0 train images
    assert "`r-10` = `ir10`, `r-100` = `ir100`" in card and "r-10/" not in "".join(hub.files)
    assert "Head / medium / tail (rule `authors`)" in card  # CIFAR-10's groups 3/4/3 (issue 13)
    assert "| head | 3 | 70 | 0–2 |" in card  # ir10: 30 + 23 + 17 train images
    assert "@misc{kim2024candle" in card and "@techreport{krizhevsky2009" in card.replace(" ", "")
    assert f'load_dataset("{REPO}", "ir10")' in card


def test_republish_uploads_only_what_changed(data_copy, fx, hub, tmp_path, capsys):
    args = ["publish", "cifar10", "--data", data_copy, "--repo-id", REPO]
    assert run_cli(args, capsys)[0] == 0
    before = dict(hub.files)
    hub.calls.clear()
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "up to date" in err
    assert [c[0] for c in hub.calls] == ["create_repo", "list_repo_tree"]  # no commit at all

    # rebuild IR 100 with another seed: its train shard, card and manifest change; its test shard does not
    spec = DATASETS.get("cifar10")
    build(spec, 100, data_copy, seed=1, source_dir=fx.source_dir, verify_checksums=False, force=True)
    hub.calls.clear()
    assert run_cli(args, capsys)[0] == 0
    train = [f for f in os.listdir(data_copy / "cifar10-lt100") if f.startswith("train-")]
    assert sorted(hub.uploaded()) == sorted(
        ["README.md", "ir100/README.md", "ir100/manifest.json", *(f"ir100/{f}" for f in train)]
    )
    assert all(hub.files[p] == before[p] for p in before if not p.startswith(("ir100/", "README")))


def test_remote_configs_not_built_here_are_kept(data_copy, hub, capsys):
    assert run_cli(["publish", "cifar10", "--data", data_copy, "--repo-id", REPO], capsys)[0] == 0
    before = dict(hub.files)
    shutil.rmtree(data_copy / "cifar10-lt100")
    shutil.rmtree(data_copy / "cifar10-lt10-authors")
    # an older single-split publish left shards at the root: they go
    hub.files["train-00000-of-00001.parquet"] = b"old"
    hub.files["manifest.json"] = b"{}"
    hub.calls.clear()
    assert run_cli(["publish", "cifar10", "--data", data_copy, "--repo-id", REPO], capsys)[0] == 0
    (commit,) = [c for c in hub.calls if c[0] == "create_commit"]
    assert commit[2] == [
        ("CommitOperationDelete", "manifest.json"),
        ("CommitOperationDelete", "train-00000-of-00001.parquet"),
    ]  # the card lists the kept configs as before, so it is unchanged
    assert hub.files == before
    assert [c[2] for c in hub.calls if c[0] == "hf_hub_download"] == [
        "ir10-authors/manifest.json",
        "ir100/manifest.json",
    ]


def test_dry_run_writes_the_repo_tree(data, hub, tmp_path, capsys):
    import datasets

    out = tmp_path / "tree"
    code, _, err = run_cli(
        ["publish", "cifar10", "--data", data, "--repo-id", REPO, "--dry-run", out], capsys
    )
    assert code == 0, err
    assert hub.calls == []  # no network, no token needed
    assert run_cli(["publish", "cifar10", "--data", data, "--repo-id", REPO], capsys)[0] == 0
    tree = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert tree == {p: b for p, b in hub.files.items() if p != ".gitattributes"}
    assert datasets.load_dataset(str(out), "ir100", cache_dir=str(tmp_path / "c"))["train"].num_rows == sum(
        COUNTS[100]
    )
    code, _, err = run_cli(
        ["publish", "cifar10", "--data", data, "--repo-id", REPO, "--dry-run", out], capsys
    )
    assert code == 2 and "not empty" in err


def test_publish_one_split_dir(data, hub, capsys):
    code, _, err = run_cli(["publish", data / "cifar10-lt100", "--repo-id", REPO], capsys)
    assert code == 0, err
    meta = front_matter(hub.files["README.md"].decode())
    assert [(c["config_name"], c.get("default")) for c in meta["configs"]] == [("ir100", True)]


def test_publish_errors_are_one_line(data, hub, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["publish", "cifar100", "--data", data, "--repo-id", REPO], capsys)
    assert code == 2 and "no build of 'cifar100'" in err and err.count("\n") == 1
    code, _, err = run_cli(["publish", "cifar10", "--data", data, "--repo-id", "no-slash"], capsys)
    assert code == 2 and "not a Hub repo id" in err
    copy = Path(shutil.copytree(data, tmp_path / "d"))
    (copy / "cifar10-lt100" / "README.md").write_text("changed")
    code, _, err = run_cli(["publish", "cifar10", "--data", copy, "--repo-id", REPO], capsys)
    assert code == 2 and "does not match its manifest" in err and hub.calls == []
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    code, _, err = run_cli(["publish", "cifar10", "--data", data, "--repo-id", REPO], capsys)
    assert code == 2 and "no Hugging Face token" in err and err.count("\n") == 1 and hub.calls == []


def test_hub_errors_are_one_line(data, tmp_path, monkeypatch, capsys):
    import httpx2
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    response = httpx2.Response(403, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
    fake = FakeHub(fail=HfHubHTTPError("403 Forbidden: no write access", response=response))
    monkeypatch.setattr(huggingface_hub, "HfApi", fake)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    code, out, err = run_cli(["publish", "cifar10", "--data", data, "--repo-id", REPO], capsys)
    assert code == 2 and "403 Forbidden" in err and err.count("\n") == 1 and TOKEN not in out + err


def test_non_redistributable_needs_the_rights_flag(data_copy, hub, capsys):
    for m_path in data_copy.glob("*/manifest.json"):
        m = json.loads(m_path.read_text())
        m["source_info"].update(redistributable=False, license="research-only")
        m_path.write_text(json.dumps(m))
    args = ["publish", "cifar10", "--data", data_copy, "--repo-id", REPO]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "research-only" in err and "--i-have-the-rights" in err and hub.calls == []
    code, _, _ = run_cli([*args, "--i-have-the-rights"], capsys)
    assert code == 0 and [c[0] for c in hub.calls] == ["create_repo", "list_repo_tree", "create_commit"]


def test_build_push_to_hub(fx, hub, tmp_path, capsys):
    args = [
        "build",
        "cifar10",
        "--source-dir",
        fx.source_dir,
        "--out",
        tmp_path / "d",
        "--no-verify-checksums",
    ]
    assert run_cli([*args, "--ir", "10"], capsys)[0] == 0
    code, out, err = run_cli([*args, "--ir", "100", "--push-to-hub", "org2/c10"], capsys)
    assert code == 0, err
    assert hub.calls[0][:2] == ("create_repo", "org2/c10") and hub.calls[0][2]["private"] is False
    meta = front_matter(hub.files["README.md"].decode())
    assert [c["config_name"] for c in meta["configs"]] == ["ir10", "ir100"]  # every build under --out
    restricted = next((s for s in DATASETS.entries() if not s.obj.redistributable), None)
    if restricted is not None:  # refused before anything is read or built
        code, _, err = run_cli(
            ["build", restricted.name, "--ir", "10", "--out", tmp_path / "e", "--push-to-hub", "o/n"], capsys
        )
        assert code == 2 and "--i-have-the-rights" in err and not (tmp_path / "e").exists()
