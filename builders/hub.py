"""Publishing a built split to the Hugging Face Hub, and fetching one back.

The token comes from the environment (``HF_TOKEN``) or the Hub's own login (``hf auth login``), resolved by
``huggingface_hub`` itself: ltbench never reads, prints or stores it. A split is uploaded as it is on disk
(Parquet shards, ``README.md`` card, ``manifest.json``), so the Hub repo is laid out exactly like the local
build and ``datasets.load_dataset("ORG/NAME")`` reads it through the card's ``configs``. Before uploading, the
folder is checked against its manifest; sources whose licence forbids republishing are refused unless the user
states they hold the rights.
"""

from __future__ import annotations

from pathlib import Path

from ltbench.builders.build import MANIFEST, read_manifest
from ltbench.builders.verify import verify_split

from ltbench.errors import LTBenchError
from ltbench.hub_download import REPO_ID, download_split, is_repo_id  # noqa: F401  (fetching lives in core)


def check_repo_id(repo_id: str) -> str:
    if not is_repo_id(repo_id):
        raise LTBenchError(f"{repo_id!r} is not a Hub repo id", "use ORG/NAME, e.g. my-org/cifar10-lt100")
    return repo_id


def redistributable(manifest: dict) -> tuple[bool, str]:
    """(may the images be republished, licence) from the manifest, or the registry for older manifests."""
    info = manifest.get("source_info")
    if info is None:
        from ltbench.registry import DATASETS

        spec = DATASETS.get(manifest["source"])
        info = {"redistributable": spec.redistributable, "license": spec.license}
    return bool(info.get("redistributable", True)), str(info.get("license", "unknown"))


def check_rights(name: str, title: str, allowed: bool, license: str, i_have_the_rights: bool) -> None:
    if not allowed and not i_have_the_rights:
        raise LTBenchError(
            f"{name} holds images of {title}, whose licence ({license}) does not allow republishing them",
            "publish it only if you hold the rights to, by adding --i-have-the-rights",
        )


def publish(
    split_dir: Path,
    repo_id: str,
    private: bool = False,
    i_have_the_rights: bool = False,
    commit_message: str | None = None,
) -> str:
    """Upload ``split_dir`` to the dataset repo ``repo_id`` (created if needed); return the repo URL."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    split_dir = Path(split_dir)
    check_repo_id(repo_id)
    manifest = read_manifest(split_dir)
    allowed, license = redistributable(manifest)
    check_rights(
        manifest["name"], manifest.get("title", manifest["source"]), allowed, license, i_have_the_rights
    )
    problems = verify_split(split_dir)
    if problems:
        raise LTBenchError(
            f"{split_dir} does not match its manifest ({problems[0]}; {len(problems)} difference(s))",
            f"run `ltbench verify {split_dir}`, then rebuild it",
        )
    if huggingface_hub.get_token() is None:
        raise LTBenchError(
            "no Hugging Face token found", "set HF_TOKEN or run `hf auth login` with a token that may write"
        )
    api = huggingface_hub.HfApi()
    files = [*manifest["files"], MANIFEST]
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=str(split_dir),
            allow_patterns=files,
            delete_patterns=["*.parquet"],  # shards of an earlier upload that this build does not have
            commit_message=commit_message or f"ltbench: {manifest['name']} (seed {manifest['seed']})",
        )
    except HfHubHTTPError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LTBenchError(
            f"the Hub refused the upload to {repo_id}: {first}",
            "check the repo id and that your token may write to it",
        ) from None
    return str(url)
