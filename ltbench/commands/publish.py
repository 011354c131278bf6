"""``ltbench publish DIR --repo-id ORG/NAME``: upload a built split to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import click

REPO_ID_HELP = "Hub dataset repo, ORG/NAME (created if missing)."
RIGHTS_HELP = "Publish a source whose licence forbids republishing (only if you hold the rights)."


@click.command("publish")
@click.argument("split_dir", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, metavar="ORG/NAME", help=REPO_ID_HELP)
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--i-have-the-rights", is_flag=True, help=RIGHTS_HELP)
def command(split_dir: Path, repo_id: str, private: bool, i_have_the_rights: bool) -> None:
    """Verify the split in SPLIT_DIR and upload it (token from HF_TOKEN or `hf auth login`)."""
    from ltbench.builders.hub import publish
    from ltbench.progress import console

    url = publish(split_dir, repo_id, private=private, i_have_the_rights=i_have_the_rights)
    console.print(f"published [bold]{split_dir}[/] to {url}")
    click.echo(url)
