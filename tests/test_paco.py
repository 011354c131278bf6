"""PaCo: the loss on a 2-class toy against an explicit loop, queue and momentum encoder, end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ltbench.baselines.losses import balanced_softmax_loss
from ltbench.baselines.paco import PaCoModel, TwoViews, key_transform, paco_loss, query_transform
from torch import nn


def _loop_loss(q, k, queue, queue_labels, labels, z, counts, alpha, beta, gamma, t):
    """PaCo's loss written out entry by entry with floats (independent of the tensor code)."""
    prior = [n / sum(counts) for n in counts]
    samples = [*q, *k, *queue]
    sample_labels = [*labels, *labels, *queue_labels]
    total = 0.0
    for i, qi in enumerate(q):
        entries = []  # (logit, denominator weight, positive weight)
        for c in range(len(counts)):
            entries.append((z[i][c] + math.log(prior[c] + 1e-9), 1.0, beta if c == labels[i] else 0.0))
        for j, v in enumerate(samples):
            if j == i:  # the query itself is neither positive nor in the denominator
                continue
            logit = sum(a * b for a, b in zip(qi, v, strict=True)) / t
            entries.append((logit, gamma, alpha if sample_labels[j] == labels[i] else 0.0))
        log_den = math.log(sum(w * math.exp(lg) for lg, w, _ in entries))
        num = sum(p * (lg - log_den) for lg, _, p in entries)
        total += -num / sum(p for _, _, p in entries)
    return total / len(q)


def _toy():
    q = [[1.0, 0.0], [0.0, 1.0]]
    k = [[0.6, 0.8], [0.8, 0.6]]
    queue = [[1.0, 0.0], [-0.6, 0.8]]
    return q, k, queue, [1, 0], [0, 1], [[1.0, 0.0], [0.0, 2.0]], [3, 1]


def _tensors(q, k, queue, queue_labels, labels, z, counts):
    t = torch.tensor
    lp = torch.log(t(counts, dtype=torch.float32) / sum(counts) + 1e-9)
    return t(q), t(k), t(queue), t(queue_labels), t(labels), t(z), lp


@pytest.mark.parametrize(("alpha", "beta", "gamma", "temp"), [(0.5, 1.0, 2.0, 0.5), (0.01, 1.0, 1.0, 0.05)])
def test_paco_loss_matches_explicit_loop_on_two_class_toy(alpha, beta, gamma, temp):
    toy = _toy()
    expect = _loop_loss(*toy, alpha, beta, gamma, temp)
    got = paco_loss(*_tensors(*toy), alpha, beta, gamma, temp)
    assert got.item() == pytest.approx(expect, rel=1e-5)


def test_paco_hand_value_single_anchor():
    # B=1, no queue: entries = centres (z + log π) and the own key k (q itself excluded).
    # q=(1,0), k=(1,0), T=1 → sample logit 1; z=(0,0), π=(½,½); α=β=γ=1, y=0.
    q = torch.tensor([[1.0, 0.0]])
    lp = torch.log(torch.tensor([0.5, 0.5]) + 1e-9)
    got = paco_loss(
        q,
        q.clone(),
        torch.zeros(0, 2),
        torch.zeros(0, dtype=torch.long),
        torch.tensor([0]),
        torch.zeros(1, 2),
        lp,
        1.0,
        1.0,
        1.0,
        1.0,
    )
    den = 0.5 + 0.5 + math.e
    expect = -((math.log(0.5) - math.log(den)) + (1 - math.log(den))) / 2
    assert got.item() == pytest.approx(expect, rel=1e-5)


def test_paco_without_contrast_is_balanced_softmax():
    # α = 0 removes sample positives, γ = 0 removes samples from the denominator: only CE(z + log π) is left
    q, k, queue, ql, labels, z, counts = _toy()
    got = paco_loss(*_tensors(q, k, queue, ql, labels, z, counts), 0.0, 1.0, 0.0, 0.5)
    expect = balanced_softmax_loss(torch.tensor(z), torch.tensor(labels), counts)
    assert got.item() == pytest.approx(expect.item(), rel=1e-5)


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.num_features = 3
        self.classifier = nn.Linear(3, 2)

    def forward_features(self, x):
        return self.body(x.flatten(1))

    def forward(self, x):
        return self.classifier(self.forward_features(x))


def test_queue_wraps_and_momentum_update():
    torch.manual_seed(0)
    net = PaCoModel(_Tiny(), num_classes=2, dim=2, queue_size=5, momentum=0.9)
    keys = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    net.enqueue(keys[:3], torch.tensor([0, 1, 0]))
    net.enqueue(keys[3:], torch.tensor([1, 1, 0]))  # rows 3, 4, then wraps to 0
    assert net.queue.tolist() == [keys[5].tolist(), keys[1].tolist(), keys[2].tolist(), *keys[3:5].tolist()]
    assert net.queue_labels.tolist() == [0, 1, 0, 1, 1]
    assert int(net.queue_ptr) == 1
    pq, pk = net.encoder_q.body.weight, net.encoder_k.body.weight
    with torch.no_grad():
        pq.add_(1.0)
    before = pk.clone()
    net.momentum_update()
    assert torch.allclose(pk, 0.9 * before + 0.1 * pq)
    assert not pk.requires_grad and pq.requires_grad


def test_two_views_differ_and_have_the_training_shape():
    img = torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8)
    torch.manual_seed(0)
    views = TwoViews(query_transform("digits", 8), key_transform("digits", 8))(img)
    assert views.shape == (2, 1, 8, 8) and views.dtype == torch.float32
    assert not torch.equal(views[0], views[1])
    rgb = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    for family in ("small", "large"):
        assert TwoViews(query_transform(family, 32), key_transform(family, 32))(rgb).shape == (2, 3, 32, 32)


def test_views_are_normalised_as_the_evaluator_and_the_cifar_query_crop_is_official():
    from torchvision.transforms import v2

    from ltbench.transforms import eval_transform

    for family, size in (("small", 32), ("large", 224), ("digits", 8)):
        ref = eval_transform(family, size).transforms[-1]
        for view in (query_transform(family, size), key_transform(family, size)):
            norm = view.transforms[-1]
            assert (list(norm.mean), list(norm.std)) == (list(ref.mean), list(ref.std)), family
    # paco_cifar.py augmentation_regular: RandomCrop(32, padding=4), flip, CIFAR10Policy, ToTensor, Cutout(16)
    kinds = [type(t).__name__ for t in query_transform("small", 32).transforms]
    assert "RandomResizedCrop" not in kinds
    assert kinds[-6:] == [
        "RandomCrop",
        "RandomHorizontalFlip",
        "AutoAugment",
        "ToDtype",
        "Cutout",
        "Normalize",
    ]
    q = query_transform("small", 32).transforms
    assert q[-6].padding in (4, [4, 4, 4, 4]) and q[-2].size == 16
    assert q[-4].policy == v2.AutoAugmentPolicy.CIFAR10


def test_end_to_end_on_digits(digits_data, tmp_path):
    from ltbench.run import run_one

    path = run_one(
        "paco", "digits-lt10", "cnn-digits", 0, {"epochs": "1"}, data_root=digits_data, results=tmp_path
    )
    res = json.loads(path.read_text())
    assert res["records"]["stages"] == [
        {"name": "paco", "split": "train", "train_images": 403, "sampler": "instance", "epochs": 1}
        | {"loss": "PaCo", "queue": 256}
    ]
    assert res["config"]["queue_size"] == 256 and res["config"]["alpha"] == 0.05


def test_queue_smaller_than_batch_is_a_user_error(digits_data, tmp_path):
    from ltbench.errors import LTBenchError
    from ltbench.run import run_one

    with pytest.raises(LTBenchError, match="queue"):
        run_one(
            "paco",
            "digits-lt10",
            "cnn-digits",
            0,
            {"queue_size": "8"},
            data_root=digits_data,
            results=tmp_path,
        )
