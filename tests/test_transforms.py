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


# -- the batched path (ImageSplit.__getitems__): same pixels and draws as the image-by-image chain ------------


def _torchvision_chain(fast_chain):
    """The same chain with torchvision's own RandomAffine in the fast op's place."""
    ops = fast_chain.transforms
    ref = ops[0].reference
    return v2.Compose([v2.RandomAffine(ref.degrees, ref.translate, ref.scale), *ops[1:]])


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 7, 11)])
def test_batched_train_transform_equals_torchvision_image_by_image(shape):
    from ltbench.families import batch_transform

    chain = get_family("digits").train_transform()
    imgs = _images(shape, torch.uint8, 300)
    batch = batch_transform(chain)
    torch.manual_seed(4)
    ours = batch(torch.stack(imgs))
    after_ours = torch.rand(4)
    torch.manual_seed(4)
    ref = _torchvision_chain(chain)
    theirs = torch.stack([ref(x) for x in imgs])
    after_theirs = torch.rand(4)
    assert ours.dtype == torch.float32 and ours.shape == (300, *shape)
    assert torch.equal(ours, theirs)
    # the same number of draws: what follows sees the same stream
    assert torch.equal(after_ours, after_theirs)
    # the warp moved pixels (a batch path that skipped it would differ from torchvision, this says it ran)
    plain = v2.Compose(chain.transforms[1:])
    assert sum(not torch.equal(a, plain(x)) for a, x in zip(ours, imgs, strict=True)) > len(imgs) // 2


def test_batch_transform_only_takes_chains_it_can_keep_equal():
    from ltbench.families import Cutout, batch_transform

    fam = get_family("digits")
    assert batch_transform(fam.train_transform()) is not None
    assert batch_transform(fam.eval_transform()) is not None
    # two random ops: drawing one op for the whole batch first would reorder the per-image draws
    assert batch_transform(v2.Compose([*fam.train_transform().transforms, Cutout(2)])) is None
    assert batch_transform(fam.train_transform(auto_augment="svhn")) is None
    assert batch_transform(v2.Compose([v2.RandomAffine(**KW), v2.ToDtype(torch.float32, scale=True)])) is None


def _loader_batches(ds, seed):
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    loader = DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return [b for b in loader]


class _OneByOne:
    """The split without ``__getitems__``: what the DataLoader fetched before the batched path."""

    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        return self.split[i]


def test_split_loader_batches_equal_the_image_by_image_ones(digits_data, monkeypatch):
    from ltbench.candle.method import IndexedSet

    from ltbench import families
    from ltbench.data import ImageSplit, open_split

    info = open_split("digits-lt10", digits_data)
    fam = get_family("digits")
    calls = []
    real = families._nearest_affine
    monkeypatch.setattr(families, "_nearest_affine", lambda imgs, p: calls.append(len(imgs)) or real(imgs, p))
    for transform in (fam.train_transform(), fam.eval_transform()):
        split = ImageSplit(info, "train", transform)
        calls.clear()
        ours = _loader_batches(split, 7)
        batched_calls = list(calls)
        theirs = _loader_batches(_OneByOne(split), 7)
        assert len(ours) == len(theirs) >= 5
        for (xa, ya), (xb, yb) in zip(ours, theirs, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
        random = isinstance(transform.transforms[0], NearestRandomAffine)
        if random:
            assert batched_calls == [len(y) for _, y in ours]  # one warp per batch, not one per image
        # CANDLE's (image, index) wrapper keeps the batched path and pairs each image with its own index
        for (xa, ya), (xi, ii) in zip(ours, _loader_batches(IndexedSet(split), 7), strict=True):
            assert torch.equal(xa, xi) and torch.equal(torch.from_numpy(split.labels[ii.numpy()]), ya)
            if not random:
                assert torch.equal(torch.stack([split[int(i)][0] for i in ii]), xi)


def test_split_without_transform_fetches_raw_batches(digits_data):
    from torch.utils.data import DataLoader

    from ltbench.data import ImageSplit, open_split

    split = ImageSplit(open_split("digits-lt10", digits_data), "train")
    x, y = next(iter(DataLoader(split, batch_size=8)))
    assert x.dtype == torch.uint8 and torch.equal(x, torch.stack([split[i][0] for i in range(8)]))
    assert y.tolist() == split.labels[:8].tolist()
