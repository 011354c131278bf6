"""``ltbench export --packed CHECKPOINT``: a trained ReActNet-A → a packed inference model file."""

from __future__ import annotations

from pathlib import Path

import click

from ltbench.errors import LTBenchError


def _state_dict(blob, module: str | None):
    """The backbone's state dict inside a checkpoint: a plain state dict, ``{"model"|"state_dict": …}``, a
    trainer checkpoint ``{"modules": {name: …}}`` or an official ReActNet checkpoint (converted later)."""
    if not isinstance(blob, dict):
        raise LTBenchError("the checkpoint does not hold a state dict", "pass a torch.save'd state dict")
    if "modules" in blob and isinstance(blob["modules"], dict):
        mods = blob["modules"]
        if module is None:
            cands = [k for k, v in mods.items() if any(str(n).endswith("stem.conv.weight") for n in v)]
            if len(cands) != 1:
                raise LTBenchError(
                    f"checkpoint modules {sorted(mods)}: which one is the ReActNet-A?", "--module"
                )
            module = cands[0]
        blob = mods[module]
    for key in ("state_dict", "model"):
        if key in blob and isinstance(blob[key], dict):
            blob = blob[key]
    prefixes = {k.split(".")[0] for k in blob}
    if prefixes == {"backbone"} or prefixes == {"model"}:
        blob = {k.split(".", 1)[1]: v for k, v in blob.items()}
    return blob


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--packed", is_flag=True, help="Write the packed (XNOR-kernel) inference model.")
@click.option("--backbone", default="reactnet-a", show_default=True, help="reactnet-a | reactnet-a-tiny")
@click.option("--module", default=None, help="Module name inside a trainer checkpoint.")
@click.option("--stem-stride", type=int, default=None, help="Override the backbone's stem stride.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--check", type=int, default=8, show_default=True, help="Random images to compare (0: skip).")
def command(checkpoint, packed, backbone, module, stem_stride, out, check) -> None:
    """Convert a trained ReActNet-A CHECKPOINT (any width) into a packed inference model at OUT."""
    if not packed:
        raise LTBenchError("export writes packed models only", "pass --packed")
    import torch

    from ltbench.backbones import create_backbone
    from ltbench.backbones.reactnet import ReActNetA, convert_official_state_dict
    from ltbench.binary import packed as packed_mod
    from ltbench.registry import BACKBONES

    sd = _state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), module)
    official = any(k.removeprefix("module.").startswith("feature.") for k in sd)
    stem_key = (
        "module.feature.0.conv1.weight" if "module.feature.0.conv1.weight" in sd else "feature.0.conv1.weight"
    )
    stem_w = sd[stem_key] if official else sd.get("stem.conv.weight")
    fc_w = sd.get("module.fc.weight", sd.get("fc.weight")) if official else sd.get("classifier.weight")
    if stem_w is None or fc_w is None:
        raise LTBenchError(
            f"{checkpoint} does not look like a ReActNet-A state dict", "pass --module or a backbone"
        )
    kw = {"width": stem_w.shape[0] / 32, "stem_stride": stem_stride}
    model = create_backbone(backbone, int(fc_w.shape[0]), int(stem_w.shape[1]), **kw)
    if not isinstance(model, ReActNetA):
        raise LTBenchError(f"{backbone} is not a ReActNet-A", "use --backbone reactnet-a or reactnet-a-tiny")
    if official:
        sd = convert_official_state_dict(sd, model)
    model.load_state_dict(sd, strict=True)
    model.eval()
    meta = {"backbone": backbone, "source": str(checkpoint), "num_classes": int(fc_w.shape[0])}
    path = packed_mod.export(model, out, meta)
    click.echo(f"wrote {path}")
    if check:
        size = BACKBONES.entry(backbone).meta.get("input_size") or 32
        x = torch.randn(check, int(stem_w.shape[1]), size, size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            a = model(x).argmax(1)
            b = packed_mod.load(path)(x).argmax(1)
        click.echo(
            f"argmax agreement float vs packed on {check} random {size}x{size} images: {(a == b).float().mean():.3f}"
        )
