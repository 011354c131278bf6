"""Backbones: ReActNet-A against the official architecture (names, shapes, params, strides, OPs), the tiny
variant, the FP models, and weights loading."""

from __future__ import annotations

import pytest
import torch

from ltbench.backbones import create_backbone, is_binary
from ltbench.backbones.reactnet import ReActBlock, convert_official_state_dict
from ltbench.binary.layers import BinaryConv2d
from ltbench.errors import LTBenchError
from ltbench.registry import BACKBONES

# The official reactnet.py (liuzechun/ReActNet, mobilenet/2_step2): stage_out_channel, and the parameter
# names/shapes its modules register, written out by hand from its BasicBlock / firstconv3x3 / fc.
OFFICIAL_CHANNELS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]


def official_state_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    def bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
        return {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")} | {
            f"{prefix}.num_batches_tracked": ()
        }

    s: dict[str, tuple[int, ...]] = {"module.feature.0.conv1.weight": (32, 3, 3, 3)}
    s |= bn("module.feature.0.bn1", 32)
    for i in range(1, 14):
        cin, cout, p = OFFICIAL_CHANNELS[i - 1], OFFICIAL_CHANNELS[i], f"module.feature.{i}"
        for name in ("move11", "move12", "move13", "move21"):
            s[f"{p}.{name}.bias"] = (1, cin, 1, 1)
        s[f"{p}.binary_3x3.weights"] = (cin * cin * 9, 1)
        s |= bn(f"{p}.bn1", cin)
        s[f"{p}.prelu1.weight"] = (cin,)
        if cin == cout:
            s[f"{p}.binary_pw.weights"] = (cin * cin, 1)
            s |= bn(f"{p}.bn2", cout)
        else:
            s[f"{p}.binary_pw_down1.weights"] = (cin * cin, 1)
            s[f"{p}.binary_pw_down2.weights"] = (cin * cin, 1)
            s |= bn(f"{p}.bn2_1", cin) | bn(f"{p}.bn2_2", cin)
        for name in ("move22", "move23"):
            s[f"{p}.{name}.bias"] = (1, cout, 1, 1)
        s[f"{p}.prelu2.weight"] = (cout,)
    s["module.fc.weight"] = (num_classes, 1024)
    s["module.fc.bias"] = (num_classes,)
    return s


@pytest.fixture(scope="module")
def reactnet():
    torch.manual_seed(0)
    return create_backbone("reactnet-a", 1000, 3)


def test_reactnet_a_matches_official_state_dict_strictly(reactnet):
    shapes = official_state_shapes()
    official = {k: torch.randn(v) if v else torch.tensor(3) for k, v in shapes.items()}
    ours = convert_official_state_dict(official, reactnet)
    reactnet.load_state_dict(ours, strict=True)  # every official tensor has a home, and nothing is left
    assert len(ours) == len(reactnet.state_dict())
    n_official = sum(
        torch.Size(v).numel() for k, v in shapes.items() if "running" not in k and "num_batches" not in k
    )
    assert sum(p.numel() for p in reactnet.parameters()) == n_official == 29_343_592
    assert torch.equal(
        reactnet.blocks[0].conv3x3.weight.flatten(), official["module.feature.1.binary_3x3.weights"].flatten()
    )


def test_reactnet_a_block_structure_strides_and_feature(reactnet):
    blocks = list(reactnet.blocks)
    assert len(blocks) == 13 and all(isinstance(b, ReActBlock) for b in blocks)
    assert [i + 1 for i, b in enumerate(blocks) if b.stride == 2] == [2, 4, 6, 12]
    assert [len(b.conv1x1) for b in blocks] == [2, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert reactnet.stem.conv.stride == (2, 2) and not isinstance(reactnet.stem.conv, BinaryConv2d)
    assert isinstance(reactnet.classifier, torch.nn.Linear) and reactnet.num_features == 1024
    reactnet.eval()
    with torch.no_grad():
        fmap = reactnet.forward_feature_map(torch.zeros(1, 3, 224, 224))
    assert fmap.shape == (1, 1024, 7, 7)
    assert BACKBONES.entry("reactnet-a").meta["input_size"] == 224 and is_binary("reactnet-a")


def test_reactnet_a_ops_as_the_paper_counts(reactnet):
    ops = reactnet.ops(224)
    # hand count: 3x3 stem 3*32*9*112*112 + fc 1024*1000; binary MACs per kernels.md §3 = 4.817e9
    assert ops["flops"] == 3 * 32 * 9 * 112 * 112 + 1024 * 1000
    assert abs(ops["bops"] - 4.817e9) / 4.817e9 < 0.001
    assert abs(ops["ops"] - 0.87e8) / 0.87e8 < 0.02


def test_tiny_runs_digits_natively_and_width_option():
    m = create_backbone("reactnet-a-tiny", 10, 1)
    assert is_binary("reactnet-a-tiny") and BACKBONES.entry("reactnet-a-tiny").meta["input_size"] == 8
    x = torch.randn(3, 1, 8, 8)
    assert m(x).shape == (3, 10) and m.forward_features(x).shape == (3, m.num_features)
    half = create_backbone("reactnet-a", 10, 3, width=0.5, stem_stride=1)
    assert half.num_features == 512 and half.forward_feature_map(torch.zeros(1, 3, 32, 32)).shape[-1] == 2


def test_resnet32_params_and_feature_map():
    m = create_backbone("resnet32", 10, 3)
    assert sum(p.numel() for p in m.parameters()) == 464_154  # LDAM-DRW's resnet32, 10 classes
    assert m.forward_feature_map(torch.zeros(2, 3, 32, 32)).shape == (2, 64, 8, 8)


def test_local_weights_file_loads_and_mismatch_is_one_line_error(tmp_path):
    m = create_backbone("cnn-digits", 10, 1)
    path = tmp_path / "w.pt"
    torch.save(m.state_dict(), path)
    m2 = create_backbone("cnn-digits", 5, 1, weights=str(path))  # other head: kept at its init
    assert torch.equal(m2.features[0].weight, m.features[0].weight)
    torch.save({"nope.weight": torch.zeros(1)}, path)
    with pytest.raises(LTBenchError, match="does not fit"):
        create_backbone("cnn-digits", 10, 1, weights=str(path))


def test_offline_pretrained_weights_error_names_weights_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(LTBenchError) as e:
        create_backbone("resnet152", 10, 3, weights="IMAGENET1K_V1")
    msg = str(e.value)
    assert "IMAGENET1K_V1" in msg and str(tmp_path) in msg and "\n" not in msg


def test_bnext_tiny_layout_and_binary_forward():
    from ltbench.backbones.bnext import BNextBlock, ELMAttention, FFN3x3

    m = create_backbone("bnext-tiny", 10, 3, stem_stride=1)
    blocks = list(m.blocks)
    assert len(blocks) == 13 and all(isinstance(b, BNextBlock) for b in blocks)
    kinds = [type(b.mixer) for b in blocks]
    assert kinds[0] is FFN3x3 and kinds[1] is ELMAttention and kinds[2] is FFN3x3  # even blocks attend
    assert [i + 1 for i, b in enumerate(blocks) if b.mixer.stride == 2] == [2, 4, 6, 12]
    conv = blocks[3].mixer.conv
    m.train()
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    assert conv.weight.grad is not None and torch.equal(conv.scale(), torch.ones(conv.out_channels))
    m.eval()
    with torch.no_grad():
        assert m.forward_feature_map(torch.zeros(1, 3, 32, 32)).shape == (1, 1024, 2, 2)
