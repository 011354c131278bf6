"""The ``ltbench`` command line. Heavy imports happen inside commands, so ``--help`` answers at once."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import click

from ltbench import __version__
from ltbench.errors import LTBenchError
from ltbench.trackers import KINDS as TRACKER_KINDS

DATA = click.option(
    "--data",
    "data_root",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Directory holding built splits.",
)
RESULTS = click.option(
    "--results",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Directory of result JSON files.",
)
TEACHER_WEIGHTS = click.option(
    "--teacher-weights",
    default=None,
    metavar="NAME|FILE",
    help="The teacher encoder's weights (CANDLE): IMAGENET1K_V2, in21k or a checkpoint file; "
    "shortcut for --set teacher_weights=...",
)
TEST_DIST = click.option(
    "--test-dist",
    default=None,
    metavar="all|uniform|forward10|...",
    help="Also evaluate on SADE's test-agnostic distributions (comma-separated names or all).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="ltbench")
@click.option(
    "-q", "--quiet", is_flag=True, help="Print only the result (table, path): no progress lines, no messages."
)
def cli(quiet: bool) -> None:
    """Long-tailed recognition benchmark suite and dataset builder (full-precision and binary networks).

    Progress: rich bars on a terminal; one plain line per stage or epoch when stderr is a file or a pipe."""
    if quiet:
        from ltbench.progress import set_quiet

        set_quiet()


@cli.command()
@DATA
@click.option("--details", metavar="NAME", help="Show one source's files, layout, pool and licence.")
def datasets(data_root: Path, details: str | None) -> None:
    """List the dataset registry: expected (paper Table 6) vs built counts."""
    from ltbench.tables import dataset_details, datasets_table

    if details:
        dataset_details(details)
    else:
        datasets_table(data_root)


def _generic_source_options(f):
    """``build``'s options for sources made from options: ``imagefolder`` and ``hf:ORG/NAME[:CONFIG]``."""
    for decorator in reversed(
        [
            click.option(
                "--test-dir",
                type=click.Path(path_type=Path),
                default=None,
                help="imagefolder: the test images, one sub-folder per class.",
            ),
            click.option(
                "--test-fraction",
                type=float,
                default=None,
                help="imagefolder: hold out this fraction of each class as test (seeded).",
            ),
            click.option("--image-column", default=None, help="hf: the image column [default: first Image]."),
            click.option(
                "--label-column", default=None, help="hf: the label column [default: first ClassLabel]."
            ),
            click.option(
                "--train-split", default=None, help="hf: the balanced pool's split [default: train]."
            ),
            click.option("--test-split", default=None, help="hf: the split kept as test [default: test]."),
        ]
    ):
        f = decorator(f)
    return f


@cli.command()
@click.argument("source")
@click.option(
    "--ir",
    default=None,
    metavar="IR",
    help="Imbalance ratio: 10 or 100 (sets that are LT already take none).",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("data"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing build (atomically).")
@click.option(
    "--source-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the official source files are [default: ~/.cache/ltbench/sources].",
)
@click.option("--download", is_flag=True, help="Download the source where an official URL still serves it.")
@click.option(
    "--no-verify-checksums",
    is_flag=True,
    help="Build from files whose checksums differ from the official ones.",
)
@click.option("--allow-any-ir", is_flag=True, help="Accept any --ir >= 1, not only 10 and 100.")
@click.option(
    "--protocol",
    default="ltbench",
    show_default=True,
    help="Split protocol: ltbench (LDAM-DRW's selection) or authors (the CANDLE authors' loaders; the "
    "output directory gets the suffix -authors).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="groups=RULE",
    help="Head/medium/tail rule stored in the manifest: authors, thirds or shots [default: per source].",
)
@click.option(
    "--push-to-hub",
    "repo_id",
    metavar="ORG/NAME",
    default=None,
    help="Then publish every build of SOURCE under --out as configs of this Hub repo.",
)
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repo as private.")
@click.option(
    "--i-have-the-rights", is_flag=True, help="With --push-to-hub: publish a non-redistributable source."
)
@_generic_source_options
def build(
    source,
    ir,
    out,
    seed,
    force,
    source_dir,
    download,
    no_verify_checksums,
    allow_any_ir,
    protocol,
    sets,
    repo_id,
    private,
    i_have_the_rights,
    **generic,
) -> None:
    """Build the LT split of SOURCE into OUT/<source>-lt<ir>[-authors]/ (Parquet + card + manifest).

    SOURCE is a registered source (`ltbench datasets`), `imagefolder` (with --source-dir: one sub-folder per
    class) or `hf:ORG/NAME[:CONFIG]` (any image-classification dataset `datasets` reads, streamed)."""
    from ltbench.builders.build import build as do_build
    from ltbench.config import parse_sets
    from ltbench.progress import console

    ir = _parse_ir(ir)
    spec = _source_spec(source, source_dir, ir, generic)
    overrides = parse_sets(sets)
    unknown = sorted(set(overrides) - {"groups"})
    if unknown:
        raise LTBenchError(
            f"ltbench build has no setting {unknown[0]!r}", "the only one is --set groups=RULE"
        )
    if repo_id is not None:
        from ltbench.builders.hub import check_repo_id, check_rights

        check_repo_id(repo_id)
        check_rights(spec.name, spec.title, spec.redistributable, spec.license, i_have_the_rights)
    path = do_build(
        spec,
        ir,
        out,
        seed,
        source_dir,
        download,
        not no_verify_checksums,
        force,
        allow_any_ir,
        protocol=protocol,
        grouping=overrides.get("groups"),
        repo_id=repo_id,
    )
    from ltbench.builders.build import checksum_line, read_manifest

    console.print(f"built [bold]{path}[/] — {checksum_line(read_manifest(path)['checksums'])}")
    click.echo(str(path))
    if repo_id is not None:
        from ltbench.builders.hub import publish

        report = publish(spec.name, repo_id, out, private=private, i_have_the_rights=i_have_the_rights)
        console.print(f"published configs {', '.join(report.configs)} to {report.url}")


def _source_spec(source: str, source_dir: Path | None, ir, generic: dict):
    """The registered source, or one made from the options (``imagefolder``, ``hf:ORG/NAME``)."""
    from ltbench.builders.spec import GENERIC_SOURCES, generic_kind
    from ltbench.registry import DATASETS

    kind = generic_kind(source)
    given = [f"--{k.replace('_', '-')}" for k, v in generic.items() if v is not None]
    if kind is None:
        if given:
            raise LTBenchError(f"{', '.join(given)} only apply to imagefolder and hf: sources", "drop them")
        return DATASETS.get(source)
    DATASETS.load()  # the source modules add their factories to GENERIC_SOURCES
    allowed = IMAGEFOLDER_OPTIONS if kind == "imagefolder" else HF_OPTIONS
    wrong = [f"--{k.replace('_', '-')}" for k, v in generic.items() if v is not None and k not in allowed]
    if wrong:
        raise LTBenchError(f"{', '.join(wrong)} do not apply to {kind} sources", "drop them")
    opts = {k: v for k, v in generic.items() if v is not None}
    if kind == "imagefolder":
        return GENERIC_SOURCES[kind](source_dir, **opts)
    if source_dir is not None:
        raise LTBenchError("--source-dir does not apply to hf: sources", "name a local dataset as hf:DIR")
    return GENERIC_SOURCES[kind](source, ir, **opts)


IMAGEFOLDER_OPTIONS = ("test_dir", "test_fraction")
HF_OPTIONS = ("image_column", "label_column", "train_split", "test_split")


def _parse_ir(text: str | None) -> float | int | None:
    """``--ir`` as a number (an int when whole); a non-number is a one-line error."""
    if text is None:
        return None
    try:
        ir = float(text)
    except ValueError:
        raise LTBenchError(f"--ir {text!r} is not a number", "use --ir 10 or --ir 100") from None
    return int(ir) if ir.is_integer() else ir


@cli.command()
def methods() -> None:
    """List the registered methods: stages, sampler, test-time step, what each follows."""
    from ltbench.tables import methods_table

    methods_table()


@cli.command()
def backbones() -> None:
    """List the registered backbones."""
    from ltbench.tables import backbones_table

    backbones_table()


@cli.command()
@click.option("--method", required=True, help="Method name (`ltbench methods`).")
@click.option(
    "--dataset", "datasets_", multiple=True, help="Built split name, e.g. digits-lt10 (repeatable)."
)
@click.option("--all", "all_", is_flag=True, help="Every built dataset under --data.")
@click.option("--backbone", default=None, help="Backbone name [default: per dataset family].")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed (repeatable) [default: 0].")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable)."
)
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML config overrides."
)
@click.option(
    "--recipe",
    default=None,
    help="Named recipe (official | binary | equal-budget | ...) [default: by backbone].",
)
@click.option("--epochs", type=int, default=None, help="Shortcut for --set epochs=N.")
@click.option("--batch-size", type=int, default=None, help="Shortcut for --set batch_size=N.")
@TEACHER_WEIGHTS
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option(
    "--share-stages/--no-share-stages",
    default=True,
    show_default=True,
    help="Train a stage other runs share (the decoupled methods' joint-CE stage 1) once, in <results>/.stages/.",
)
@click.option(
    "--packed",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Evaluate binary backbones on the packed XNOR kernels (auto: where a kernel exists).",
)
@click.option(
    "--log",
    "logs",
    type=click.Choice(TRACKER_KINDS),
    multiple=True,
    help="Also log epochs, the resolved config, the result and plots to a tracker (repeatable); "
    "under <results>/logs/.",
)
@TEST_DIST
@DATA
@RESULTS
def run(
    method,
    datasets_,
    all_,
    backbone,
    seeds,
    sets,
    config_file,
    recipe,
    epochs,
    batch_size,
    teacher_weights,
    device,
    resume,
    share_stages,
    packed,
    logs,
    test_dist,
    data_root,
    results,
) -> None:
    """Train METHOD on built datasets and write one result JSON per run."""
    from ltbench.progress import console, set_label
    from ltbench.registry import METHODS
    from ltbench.run import run_one
    from ltbench.tables import built_splits, print_result

    METHODS.entry(method)
    overrides = _overrides(sets, epochs, batch_size, teacher_weights)
    names = list(datasets_)
    if all_:
        names += [n for n in built_splits(data_root) if n not in names]
    if not names:
        raise LTBenchError("no dataset given", "pass --dataset NAME or --all (`ltbench datasets` lists them)")
    for name in names:
        for seed in seeds or (0,):
            set_label(f"{method} on {name} seed {seed}")
            with _trackers(logs, method, name, backbone, seed, data_root, results) as tracked:
                path = run_one(
                    method,
                    name,
                    backbone,
                    seed,
                    overrides,
                    config_file,
                    data_root,
                    results,
                    device,
                    resume,
                    packed=packed,
                    recipe=recipe,
                    test_dist=test_dist,
                    share_stages=share_stages,
                )
                tracked.finish(path)
            print_result(path)
            console.print(f"wrote [bold]{path}[/]")


def _overrides(
    sets, epochs: int | None, batch_size: int | None, teacher_weights: str | None = None
) -> dict[str, str]:
    from ltbench.config import parse_sets

    overrides = parse_sets(sets)
    if teacher_weights is not None:
        overrides["teacher_weights"] = teacher_weights
    if epochs is not None:
        overrides["epochs"] = str(epochs)
    if batch_size is not None:
        overrides["batch_size"] = str(batch_size)
    return overrides


@cli.command("config")
@click.option("--method", required=True, help="Method name (`ltbench methods`).")
@click.option("--dataset", required=True, help="Dataset name, e.g. cifar100-lt100 (need not be built).")
@click.option("--backbone", default=None, help="Backbone name [default: the dataset family's].")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable)."
)
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML config overrides."
)
@click.option(
    "--recipe", default=None, help="Named recipe [default: binary on a binary backbone, else official]."
)
@click.option("--epochs", type=int, default=None, help="Shortcut for --set epochs=N.")
@click.option("--batch-size", type=int, default=None, help="Shortcut for --set batch_size=N.")
@TEACHER_WEIGHTS
@DATA
def config_cmd(
    method, dataset, backbone, sets, config_file, recipe, epochs, batch_size, teacher_weights, data_root
) -> None:
    """Print the fully resolved config of METHOD on DATASET as YAML (nothing is trained or built).

    The output feeds back unchanged: `ltbench config ... > c.yaml; ltbench run ... --config c.yaml`."""
    from ltbench.backbones import is_binary
    from ltbench.config import resolve_config, resolved_recipe, to_yaml
    from ltbench.families import family_of_dataset, get_family
    from ltbench.registry import BACKBONES, METHODS

    METHODS.entry(method)
    source, family = family_of_dataset(dataset, data_root)
    backbone = backbone or get_family(family).default_backbone
    BACKBONES.entry(backbone)
    binary = is_binary(backbone)
    overrides = _overrides(sets, epochs, batch_size, teacher_weights)
    cfg = resolve_config(method, binary, family, config_file, overrides, recipe, backbone)
    name = resolved_recipe(method, binary, config_file, recipe)
    header = [
        f"ltbench config: {method} on {dataset} (source {source}, family {family}), backbone {backbone}"
    ]
    click.echo(to_yaml(cfg, name, header), nl=False)


def _trackers(logs, method, dataset, backbone, seed, data_root, results):
    """The ``--log`` trackers of one run (none: a no-op), in ``<results>/logs/<dataset>/<method>/...``."""
    from ltbench.data import open_split
    from ltbench.run import default_backbone
    from ltbench.trackers import Trackers, log_dir

    if logs:
        backbone = backbone or default_backbone(open_split(dataset, data_root).family)
    run = {"method": method, "dataset": dataset, "backbone": backbone, "seed": seed}
    return Trackers(logs, log_dir(results, dataset, method, str(backbone), seed), run)


@cli.command()
@RESULTS
@click.option("--out", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["md", "csv", "json", "latex", "html"]),
    multiple=True,
    help="Output format (repeatable) [default: md].",
)
@click.option("--readme", is_flag=True, help="Also regenerate the README's section between the markers.")
@click.option("--readme-file", type=click.Path(path_type=Path), default=Path("README.md"), show_default=True)
@click.option(
    "--reported",
    type=click.Path(path_type=Path),
    default=None,
    help="Reported-figures CSV [default: the checkout's leaderboards/reported.csv].",
)
@click.option("--no-reported", is_flag=True, help="Show reproduced figures only.")
@click.option(
    "--plots", is_flag=True, help="Also redraw OUT/plots/ (as `ltbench plot`) and link the figures."
)
@click.option(
    "--bench",
    type=click.Path(path_type=Path),
    default=Path("benchmarks/results"),
    show_default=True,
    help="Where benchmarks/bench_multires.py wrote multires*.json (paper Fig. 2).",
)
@click.option(
    "--method", "methods_", multiple=True, help="Rows for per-class line plots (repeatable, max 5)."
)
@click.option(
    "--screenshot", is_flag=True, help="Also write OUT/screenshot.png of index.html (needs Chromium)."
)
def leaderboard(
    results, out, formats, readme, readme_file, reported, no_reported, plots, bench, methods_, screenshot
) -> None:
    """Regenerate the leaderboards (reproduced beside reported) and their figures from result files."""
    from ltbench.regenerate import regenerate

    rep = False if no_reported else (reported or True)
    paths, drawn = regenerate(
        results,
        out,
        formats or ("md",),
        rep,
        readme_file if readme else None,
        plots,
        bench,
        methods_,
        screenshot,
    )
    for path in [*(drawn.files if drawn else []), *paths]:
        click.echo(str(path))


@cli.command()
@DATA
@RESULTS
@click.option("--out", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True)
@click.option("--seeds", type=int, default=1, show_default=True, help="Seeds per method.")
@click.option("--ir", type=int, default=10, show_default=True)
@click.option("--method", "methods_", multiple=True, help="Only these methods (repeatable) [default: all].")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--backbone", default="reactnet-a-tiny", show_default=True, help="Backbone of every run.")
@click.option(
    "--jobs",
    type=int,
    default=None,
    help="Runs in parallel, 1-thread each [default: one per core, max 4; 1 on GPU].",
)
@TEST_DIST
def demo(data_root, results, out, seeds, ir, methods_, device, backbone, jobs, test_dist) -> None:
    """Build digits-LT, train every registered method, print the table, write leaderboards and plots."""
    from ltbench.demo import run_demo

    run_demo(
        data_root,
        results,
        out,
        seeds,
        ir,
        methods_,
        device=device,
        backbone=backbone,
        jobs=jobs,
        test_dist=test_dist,
    )


def _add_plugin_commands() -> None:
    """Commands in ``ltbench/commands/`` (one module each, exposing ``command``) join the group."""
    from ltbench import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"ltbench.commands.{info.name}")
        cli.add_command(mod.command)


_add_plugin_commands()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except LTBenchError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
