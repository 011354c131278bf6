"""The digits family's fast affine augmentation against torchvision's ``v2.RandomAffine`` (same draws, same
pixels), and that the digits train transform uses it."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ltbench.families import NearestRandomAffine, get_family

KW = {"degrees": 10, "translate": (0.1, 0.1), "scale": (0.9, 1.1)}


def _images(shape, dtype, n):
    g = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        return [torch.randint(0, 256, shape, dtype=dtype, generator=g) for _ in range(n)]
    return [torch.rand(shape, generator=g) for _ in range(n)]


def _both(fast, ref, imgs):
    torch.manual_seed(1)
    ours = [fast(x) for x in imgs]
    torch.manual_seed(1)
    theirs = [ref(x) for x in imgs]
    return ours, theirs


@pytest.mark.parametrize(
    ("shape", "dtype", "kw"),
    [
        ((1, 8, 8), torch.uint8, KW),
        ((3, 7, 11), torch.uint8, KW),
        ((1, 28, 28), torch.float32, KW),
        (
            (2, 8, 8),
            torch.uint8,
            {"degrees": 45, "translate": (0.3, 0.2), "scale": (0.5, 1.5), "shear": (-20, 20)},
        ),
    ],
)
def test_nearest_affine_equals_torchvision(shape, dtype, kw, monkeypatch):
    imgs = _images(shape, dtype, 1500)
    fast = NearestRandomAffine(**kw)
    monkeypatch.setattr(fast.reference, "forward", lambda *a: pytest.fail("took torchvision's path"))
    ours, theirs = _both(fast, v2.RandomAffine(**kw), imgs)
    assert all(
        a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        for a, b in zip(ours, theirs, strict=True)
    )
    # the draws moved pixels: a fast path that returned its input (or zeros) would not match torchvision
    assert sum(not torch.equal(a, x) for a, x in zip(ours, imgs, strict=True)) > len(imgs) // 2


def test_nearest_affine_defers_what_it_does_not_handle():
    img = tv_tensors.Image(_images((1, 8, 8), torch.uint8, 1)[0])
    for kw in ({**KW, "fill": 7}, {**KW, "center": (2, 3)}, KW):
        ours, theirs = _both(NearestRandomAffine(**kw), v2.RandomAffine(**kw), [img])
        assert type(ours[0]) is tv_tensors.Image and torch.equal(ours[0], theirs[0])
    plain = [x.as_subclass(torch.Tensor) for x in _images((1, 8, 8), torch.uint8, 20)]
    ours, theirs = _both(
        NearestRandomAffine(**{**KW, "fill": 7}), v2.RandomAffine(**{**KW, "fill": 7}), plain
    )
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True)) and any(
        (a == 7).any() for a in ours
    )


def test_digits_train_transform_uses_it_with_the_family_settings():
    ops = get_family("digits").train_transform().transforms
    aff = ops[0]
    assert type(aff) is NearestRandomAffine
    ref = aff.reference
    assert (ref.degrees, ref.translate, ref.scale) == ([-10.0, 10.0], (0.1, 0.1), (0.9, 1.1))
    assert type(get_family("digits").train_transform(augment=False).transforms[0]) is v2.ToDtype
