"""``ltbench publish SOURCE --repo-id ORG/NAME``: every build of a source as configs of one Hub dataset repo."""

from __future__ import annotations

from pathlib import Path

import click

REPO_ID_HELP = "Hub dataset repo, ORG/NAME (created if missing)."
RIGHTS_HELP = "Publish a source whose licence forbids republishing (only if you hold the rights)."
DRY_RUN_HELP = (
    "Write the repo tree into DIR instead of uploading (`datasets.load_dataset(DIR, 'ir10')` reads it)."
)


@click.command("publish")
@click.argument("source")
@click.option("--repo-id", required=True, metavar="ORG/NAME", help=REPO_ID_HELP)
@click.option(
    "--data",
    "data_root",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Directory holding built splits.",
)
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--i-have-the-rights", is_flag=True, help=RIGHTS_HELP)
@click.option("--dry-run", type=click.Path(path_type=Path), default=None, metavar="DIR", help=DRY_RUN_HELP)
def command(
    source: str, repo_id: str, data_root: Path, private: bool, i_have_the_rights: bool, dry_run: Path | None
) -> None:
    """Upload every built IR and protocol of SOURCE under --data as configs of one dataset repo (only what
    changed is uploaded; token from HF_TOKEN or `hf auth login`). SOURCE may also be one split directory."""
    from ltbench.builders.hub import publish
    from ltbench.progress import console

    report = publish(
        source, repo_id, data_root, private=private, i_have_the_rights=i_have_the_rights, dry_run=dry_run
    )
    configs = ", ".join(f"{c}{' (default)' if c == report.default else ''}" for c in report.configs)
    if dry_run is not None:
        console.print(f"wrote the tree of {repo_id} ({len(report.uploaded)} files; configs {configs})")
    elif report.uploaded or report.deleted:
        console.print(
            f"published configs {configs} to {report.url}: "
            f"{len(report.uploaded)} file(s) uploaded, {len(report.deleted)} deleted"
        )
    else:
        console.print(f"{report.url} is up to date (configs {configs}): nothing uploaded")
    click.echo(report.url)
