"""Hub layout and publishing: ``datasets.load_dataset`` on a folder laid out exactly as the Hub repo,
``ltbench.load_split`` (local and Hub, network mocked), and ``publish`` / ``build --push-to-hub`` through a
fake ``HfApi`` (no network; the token is never printed)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cifar_fixtures import CIFAR10_CLASSES, run_cli, write_cifar  # noqa: E402
from ltbench.builders.build import build  # noqa: E402
from ltbench.builders.verify import verify_split  # noqa: E402

import ltbench  # noqa: E402
from ltbench.errors import LTBenchError  # noqa: E402
from ltbench.registry import DATASETS  # noqa: E402

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")
TOKEN = "hf_never_print_this_0123456789"
REPO = "my-org/cifar10-lt10"


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("src"), "cifar10", train_per_class=30, test_per_class=2)


@pytest.fixture(scope="module")
def built(fx, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    return build(
        DATASETS.get("cifar10"), 10, out, source_dir=fx.source_dir, verify_checksums=False, repo_id=REPO
    )


class FakeHub:
    """Stands in for ``huggingface_hub.HfApi``: records calls; ``upload_folder`` copies the allowed files
    into ``repo`` (plus the ``.gitattributes`` the Hub creates), i.e. the repo's file tree."""

    def __init__(self, repo: Path, fail: Exception | None = None):
        self.repo, self.fail, self.calls = repo, fail, []

    def __call__(self, *args, **kwargs):  # HfApi()
        assert not args and not kwargs  # the token is left to huggingface_hub's own resolution
        return self

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))
        if self.fail:
            raise self.fail
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw["repo_id"], kw))
        src = Path(kw["folder_path"])
        self.repo.mkdir(parents=True, exist_ok=True)
        (self.repo / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n")
        for p in src.iterdir():
            if any(fnmatch(p.name, pat) for pat in kw["allow_patterns"]):
                shutil.copy(p, self.repo / p.name)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub

    fake = FakeHub(tmp_path / "hub-repo")
    monkeypatch.setattr(huggingface_hub, "HfApi", fake)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    return fake


def check_dataset(ds, built: Path, fx) -> None:
    m = json.loads((built / "manifest.json").read_text())
    assert sorted(ds) == ["test", "train"]
    assert ds["train"].features["label"].names == CIFAR10_CLASSES
    assert type(ds["train"].features["image"]).__name__ == "Image"
    for split in ("train", "test"):
        assert ds[split].num_rows == m["splits"][split]["num_rows"]
        assert np.bincount(ds[split]["label"], minlength=10).tolist() == m["splits"][split]["class_counts"]
    key = int(m["splits"]["train"]["source_keys"][0])
    np.testing.assert_array_equal(np.asarray(ds["train"][0]["image"]), fx.image("train", key))


def test_load_dataset_reads_the_card_configs(built, fx, tmp_path):
    import datasets

    check_dataset(datasets.load_dataset(str(built), cache_dir=str(tmp_path / "c")), built, fx)
    assert datasets.get_dataset_config_names(str(built)) == ["default"]


def test_load_split_local_path_name_and_split(built, fx, tmp_path):
    check_dataset(ltbench.load_split(str(built), cache_dir=str(tmp_path / "c")), built, fx)
    test = ltbench.load_split(built.name, split="test", data_root=built.parent, cache_dir=str(tmp_path / "c"))
    assert test.num_rows == 20
    with pytest.raises(LTBenchError, match="no split 'val'"):
        ltbench.load_split(str(built), split="val")
    with pytest.raises(LTBenchError, match="no built split or Hub dataset"):
        ltbench.load_split("not a name", data_root=tmp_path)


def test_publish_uploads_the_folder_as_is(built, fx, hub, tmp_path, capsys, monkeypatch):
    code, out, err = run_cli(["publish", built, "--repo-id", REPO, "--private"], capsys)
    assert code == 0, err
    assert TOKEN not in out + err
    (kind, repo, kw), (kind2, repo2, up) = hub.calls
    assert (kind, repo, kw) == (
        "create_repo",
        REPO,
        {"repo_type": "dataset", "private": True, "exist_ok": True},
    )
    assert (kind2, repo2, up["repo_type"], Path(up["folder_path"])) == (
        "upload_folder",
        REPO,
        "dataset",
        built,
    )
    assert "token" not in up
    assert sorted(p.name for p in hub.repo.iterdir()) == sorted([".gitattributes", *os.listdir(built)])
    assert f'load_dataset("{REPO}")' in (hub.repo / "README.md").read_text()

    # the Hub repo's tree loads with plain `datasets` and verifies against its manifest
    import datasets

    check_dataset(datasets.load_dataset(str(hub.repo), cache_dir=str(tmp_path / "c")), built, fx)
    assert verify_split(hub.repo) == []

    # ltbench.load_split(repo_id): only the network call (snapshot_download) is mocked
    import huggingface_hub

    asked = []

    def fake_snapshot(repo_id, **kw):
        asked.append((repo_id, kw["repo_type"]))
        return str(hub.repo)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    train = ltbench.load_split(REPO, split="train", cache_dir=str(tmp_path / "c"))
    assert (
        asked == [(REPO, "dataset")]
        and train.num_rows == json.loads((built / "manifest.json").read_text())["splits"]["train"]["num_rows"]
    )


def test_publish_without_token_is_one_line(built, hub, monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    code, _, err = run_cli(["publish", built, "--repo-id", REPO], capsys)
    assert code == 2 and "no Hugging Face token" in err and err.count("\n") == 1 and hub.calls == []


def test_publish_refuses_bad_repo_id_and_tampered_copy(built, hub, tmp_path, capsys):
    code, _, err = run_cli(["publish", built, "--repo-id", "no-slash"], capsys)
    assert code == 2 and "not a Hub repo id" in err
    copy = Path(shutil.copytree(built, tmp_path / built.name))
    (copy / "README.md").write_text("changed")
    code, _, err = run_cli(["publish", copy, "--repo-id", REPO], capsys)
    assert code == 2 and "does not match its manifest" in err and hub.calls == []


def test_hub_errors_are_one_line(built, tmp_path, monkeypatch, capsys):
    import httpx2
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    response = httpx2.Response(403, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
    fake = FakeHub(
        tmp_path / "repo", fail=HfHubHTTPError("403 Forbidden: no write access", response=response)
    )
    monkeypatch.setattr(huggingface_hub, "HfApi", fake)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    code, out, err = run_cli(["publish", built, "--repo-id", REPO], capsys)
    assert code == 2 and "403 Forbidden" in err and err.count("\n") == 1 and TOKEN not in out + err


def test_non_redistributable_needs_the_rights_flag(built, hub, tmp_path, capsys):
    copy = Path(shutil.copytree(built, tmp_path / built.name))
    m = json.loads((copy / "manifest.json").read_text())
    m["source_info"].update(redistributable=False, license="research-only")
    (copy / "manifest.json").write_text(json.dumps(m))
    code, _, err = run_cli(["publish", copy, "--repo-id", REPO], capsys)
    assert code == 2 and "research-only" in err and "--i-have-the-rights" in err and hub.calls == []
    code, _, _ = run_cli(["publish", copy, "--repo-id", REPO, "--i-have-the-rights"], capsys)
    assert code == 0 and [c[0] for c in hub.calls] == ["create_repo", "upload_folder"]


def test_build_push_to_hub(fx, hub, tmp_path, capsys):
    args = ["build", "cifar10", "--ir", "100", "--source-dir", fx.source_dir, "--out", tmp_path / "d"]
    code, out, err = run_cli([*args, "--no-verify-checksums", "--push-to-hub", "org2/c10"], capsys)
    assert code == 0, err
    assert [c[1] for c in hub.calls] == ["org2/c10", "org2/c10"] and hub.calls[0][2]["private"] is False
    assert 'load_dataset("org2/c10")' in (hub.repo / "README.md").read_text()
    restricted = next((s for s in DATASETS.entries() if not s.obj.redistributable), None)
    if restricted is not None:  # refused before anything is read or built
        code, _, err = run_cli(
            ["build", restricted.name, "--ir", "10", "--out", tmp_path / "e", "--push-to-hub", "o/n"], capsys
        )
        assert code == 2 and "--i-have-the-rights" in err and not (tmp_path / "e").exists()
