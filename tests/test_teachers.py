"""Teachers: the digits teacher (pretrain split, cached, deterministic) and the pretrained encoders."""

from __future__ import annotations

import pytest
import torch

from ltbench.backbones.cnn import SmallCNN
from ltbench.errors import LTBenchError
from ltbench.teachers import digits_pretrain, digits_teacher, pretrained_encoder


def test_pretrain_split_of_the_built_set_is_the_builders_pretrain_pool(digits_data):
    from pathlib import Path

    import numpy as np
    from ltbench.builders.sources.digits import read_digits
    from ltbench.builders.spec import ReadOptions

    from ltbench.data import decode, open_split

    x1, y1 = digits_pretrain(open_split("digits-lt10", digits_data))
    pool = read_digits(ReadOptions(Path("."), 0)).fixed["pretrain"]
    x2 = np.stack([np.asarray(decode(pool.read(i), "L")) for i in range(len(pool))])[:, None]
    assert x1.shape == (300, 1, 8, 8) and torch.equal(x1, torch.from_numpy(x2))
    assert y1.tolist() == list(pool.labels) and torch.bincount(y1).tolist() == [30] * 10


def test_digits_encoder_without_a_built_split_is_one_line_error():
    with pytest.raises(LTBenchError, match="needs a built digits split"):
        pretrained_encoder("digits")


def test_unknown_encoder_is_one_line_error():
    with pytest.raises(LTBenchError, match="unknown teacher encoder"):
        pretrained_encoder("vgg")


def test_efficientnet_offline_without_cache_names_weights_and_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(LTBenchError) as e:
        pretrained_encoder("efficientnetv2-m-in21k")
    assert "tf_efficientnetv2_m.in21k" in str(e.value) and str(tmp_path) in str(e.value)


@pytest.mark.slow
def test_digits_teacher_trains_once_caches_and_is_accurate(digits_data, tmp_path, monkeypatch):
    from ltbench.data import ImageSplit, open_split
    from ltbench.transforms import eval_transform

    monkeypatch.setenv("LTBENCH_CACHE", str(tmp_path))
    info = open_split("digits-lt10", digits_data)
    t1 = digits_teacher(info=info)
    assert t1.cache_path.parent == tmp_path / "teachers" and t1.cache_path.exists()
    mtime = t1.cache_path.stat().st_mtime_ns
    t2 = pretrained_encoder("digits", info=info)
    assert t2.cache_path.stat().st_mtime_ns == mtime  # loaded, not retrained
    assert all(
        torch.equal(a, b) for a, b in zip(t1.state_dict().values(), t2.state_dict().values(), strict=True)
    )
    assert not any(p.requires_grad for p in t2.parameters())
    ds = ImageSplit(info, "test", eval_transform("digits"), mode="L")
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        acc = (t1(x).argmax(1) == torch.as_tensor(ds.labels)).float().mean().item()
        assert t1.forward_feature_map(x[:2]).shape == (2, 128, 4, 4)
    assert acc > 0.9


def test_digits_teacher_is_trained_once_when_two_callers_race(digits_data, tmp_path, monkeypatch):
    """Demo workers and concurrent runs may ask for the uncached teacher at once: one trains, the other waits
    for its file and loads it (the lock is an flock on the cache path, so two threads contend like two
    processes)."""
    import threading
    import time

    from ltbench import teachers
    from ltbench.data import open_split

    monkeypatch.setenv("LTBENCH_CACHE", str(tmp_path))
    info = open_split("digits-lt10", digits_data)
    trained = []

    def fake_train(images, labels):
        trained.append(threading.get_ident())
        time.sleep(0.3)  # long enough that the second caller arrives while the first trains
        return SmallCNN(int(labels.max()) + 1, 1, teachers.DIGITS_TEACHER_RECIPE["width"])

    monkeypatch.setattr(teachers, "_train_digits", fake_train)
    got = []
    threads = [threading.Thread(target=lambda: got.append(digits_teacher(info=info))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trained) == 1 and len(got) == 2
    assert all(torch.equal(a, b) for a, b in zip(*(m.state_dict().values() for m in got), strict=True))


@pytest.mark.slow
def test_digits_teacher_weights_do_not_depend_on_the_callers_thread_count(digits_data, tmp_path, monkeypatch):
    """The cache key has no thread count, so the teacher must not depend on it: a demo worker (1 thread) and a
    plain `ltbench run` (every core) would otherwise cache different teachers, whichever came first."""
    from ltbench.data import open_split

    info = open_split("digits-lt10", digits_data)
    before = torch.get_num_threads()
    models = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            monkeypatch.setenv("LTBENCH_CACHE", str(tmp_path / str(threads)))
            models.append(digits_teacher(info=info))
            assert torch.get_num_threads() == threads  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(*(m.state_dict().values() for m in models), strict=True))
