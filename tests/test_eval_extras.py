"""Metrics added for issue 16 (top-5, macro-F1), cost columns (params, OPs, CPU latency), teacher-overlap
flags and the teacher reference row — each against values derived by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from ltbench import overlaps
from ltbench.binary.layers import BinaryConv2d
from ltbench.cost import count_params, cpu_latency_ms, measure_cost
from ltbench.metrics import RESULT_METRICS, macro_f1, summarize, top_k_accuracy
from ltbench.result_extras import teacher_reference


def test_macro_f1_on_a_hand_made_confusion():
    # confusion (rows true, cols pred): [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 1, 1, 2, 2])
    # class 0: TP 2, FP 0, FN 1 → 4/5; class 1: TP 1, FP 1, FN 1 → 2/4; class 2: TP 1, FP 1, FN 0 → 2/3
    assert macro_f1(labels, preds, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # a class absent from the test labels is left out of the mean (class 3 here, never true, never predicted)
    assert macro_f1(labels, preds, 4) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_top5_by_hand():
    logits = np.array(
        [
            [9, 8, 7, 6, 5, 4, 3],  # label 4: 5th largest → hit
            [9, 8, 7, 6, 5, 4, 3],  # label 5: 6th → miss
            [0, 0, 0, 0, 0, 0, 1],  # label 6: largest → hit
            [1, 2, 3, 4, 5, 6, 7],  # label 0: smallest → miss
        ],
        dtype=float,
    )
    assert top_k_accuracy(np.array([4, 5, 6, 0]), logits, 5) == 0.5
    assert top_k_accuracy(np.array([0]), np.zeros((1, 5)), 5) is None  # 5 classes: top-5 is always right


def test_summarize_stores_top5_and_macro_f1():
    assert {"top5", "macro_f1", "avg"} <= set(RESULT_METRICS)
    labels = np.array([0, 0, 0, 1, 1, 2])
    logits = np.eye(6)[[0, 0, 1, 1, 2, 2]]  # preds as above, 6 classes so top-5 is defined
    m = summarize(labels, logits, [30, 20, 10, 5, 3, 1], "thirds")
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["avg"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # balanced accuracy over the tested classes
    # top-5 with one-hot logits: the predicted class first, then classes 0..5 by index (stable ties):
    # row preds [0,0,1,1,2,2] → top-5 sets {0,1,2,3,4} for preds 0,1,2 (class 5 is the only one left out)
    assert m["top5"] == 1.0


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)  # 4*1*9 + 4 = 40 params
        self.bin = BinaryConv2d(4, 8, 3, padding=1)  # 8*4*9 = 288 binary params
        self.fc = nn.Linear(8 * 16, 10)  # 128*10 + 10 = 1290 params

    def forward(self, x):
        return self.fc(self.bin(self.stem(x)).flatten(1))


class _Method:
    def __init__(self, sleep_s=0.0):
        self.sleep_s = sleep_s

    def predict(self, model, images):
        time.sleep(self.sleep_s)
        return model(images)


class _Task:
    def eval_set(self, split):
        return [(torch.zeros(1, 4, 4), 0)]


def test_ops_and_params_against_a_hand_count():
    model = Tiny()
    assert count_params(model) == {"params": 40 + 288 + 1290, "binary_params": 288}
    cost = measure_cost(_Method(), model, model, _Task(), "float", repeats=3)
    # stem: 4*4*4 outputs × 1*9 = 576 FP MACs; binary conv: 8*4*4 outputs × 4*9 = 4608 binary MACs;
    # fc: 10 outputs × 128 = 1280 FP MACs.  OPs = 4608/64 + 576 + 1280 = 1928.
    assert (cost["bops"], cost["flops"], cost["ops"]) == (4608, 1856, 1928)
    assert cost["params"] == 1618 and cost["input_shape"] == [1, 1, 4, 4] and cost["batch"] == 1
    assert cost["threads"] == torch.get_num_threads() and cost["path"] == "float"


def test_latency_is_a_median_in_milliseconds():
    model = Tiny()
    ms = cpu_latency_ms(_Method(0.02), model, torch.zeros(1, 1, 4, 4), warmup=1, repeats=3)
    assert 20.0 <= ms < 2000.0  # a 20 ms sleep per call: milliseconds (seconds would read 0.02)
    cost = measure_cost(_Method(0.005), model, model, _Task(), "packed", repeats=3)
    assert 5.0 <= cost["latency_ms"] < 2000.0 and cost["latency_device"] == "cpu" and cost["path"] == "packed"


@pytest.mark.parametrize(
    ("source", "used", "flag"),
    [
        ("dogs", {"teacher": "resnet152"}, True),  # Stanford Dogs ⊂ ImageNet
        ("dogs", {"teacher": "efficientnetv2-m-in21k"}, True),
        ("cub200", {"teacher": "resnet152"}, True),  # CUB test ∩ ImageNet
        ("cub200", {"teacher": "digits"}, False),  # the digits teacher: its own pretrain split
        ("cub200", {"teacher": "/ckpt/my-teacher.pt"}, False),  # a user checkpoint: no known overlap
        ("cifar100", {"teacher": "resnet152"}, False),  # no overlap registered
        ("dogs", {"student": "IMAGENET1K_V2"}, True),  # pretrained student weights count too
        ("dogs", {}, False),
    ],
)
def test_teacher_overlap_flags(source, used, flag):
    out = overlaps.check(source, used)
    assert out["flag"] is flag
    if used:
        assert (out["weights"][0]["overlap"] is not None) is flag


def test_used_weights_reads_the_teacher_record_and_student_weights():
    records = {"teacher": {"encoder": "resnet152"}}
    assert overlaps.used_weights(records, {"weights": None}) == {"teacher": "resnet152"}
    records = {"teacher": {"encoder": "resnet152", "weights": "/w/mine.pt"}}
    assert overlaps.used_weights(records, {"weights": "IMAGENET1K_V1"}) == {
        "teacher": "/w/mine.pt",
        "student": "IMAGENET1K_V1",
    }


def test_used_weights_finds_the_teacher_of_a_teacher_method():
    """DiVE*'s teacher is CANDLE's calibrated teacher, trained through fit_teacher: its encoder record sits in
    the teacher method's own records, and a DiVE* row on CUB with an ImageNet encoder must be flagged too."""
    records = {"dive_teacher": {"source": "candle", "records": {"teacher": {"encoder": "resnet152"}}}}
    assert overlaps.used_weights(records, {}) == {"teacher": "resnet152"}
    assert overlaps.check("cub200", overlaps.used_weights(records, {}))["flag"] is True
    balms = {"dive_teacher": {"source": "balms", "records": {"stages": []}}}  # BALMS: no pretrained teacher
    assert overlaps.used_weights(balms, {}) == {}


def test_teacher_weights_of_a_user_checkpoint_remove_the_flag(tmp_path):
    """``--teacher-weights FILE`` (CANDLE's ``teacher_weights``) replaces the encoder's ImageNet weights; the
    record names the file, whose corpus is unknown, so the Dogs row carries no flag."""
    from ltbench.candle.calibration import teacher_record
    from ltbench.candle.config import CandleConfig

    ckpt = tmp_path / "my-resnet152.pt"
    ckpt.write_bytes(b"not read here")
    rec = teacher_record(CandleConfig(teacher="resnet152", teacher_weights=str(ckpt)), "large")
    assert rec == {"encoder": "resnet152", "weights": str(ckpt)}
    assert overlaps.check("dogs", overlaps.used_weights({"teacher": rec}, {}))["flag"] is False
    plain = teacher_record(CandleConfig(teacher="resnet152"), "large")
    assert plain == {"encoder": "resnet152"}
    assert overlaps.check("dogs", overlaps.used_weights({"teacher": plain}, {}))["flag"] is True


def test_cards_of_dogs_and_cub_carry_the_note():
    assert "Teacher overlap" in overlaps.card_section("dogs") and "Khosla" in overlaps.card_section("dogs")
    assert "cub_200_2011" in overlaps.card_section("cub200")
    assert overlaps.card_section("cifar10") == ""


def test_teacher_reference_row_from_calibration_records():
    rec = {
        "teacher": {"encoder": "digits"},
        "teacher_calibration": {"avg": 0.9, "top1": 0.91, "top5": 1.0, "macro_f1": 0.89, "head": 1.0,
                                "medium": 0.9, "tail": 0.8},
    }  # fmt: skip
    ref = teacher_reference(rec)
    assert ref["encoder"] == "digits" and ref["metrics"]["avg"] == 0.9 and ref["metrics"]["tail"] == 0.8
    assert teacher_reference({"teacher_calibration": None}) is None and teacher_reference({}) is None


@pytest.mark.parametrize(
    ("source", "write", "cite"),
    [("cub200", "write_cub200", "cub_200_2011"), ("dogs", "write_dogs", "Khosla")],
)
def test_built_cards_carry_the_overlap_note(tmp_path, source, write, cite):
    import source_fixtures as fx
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS

    getattr(fx, write)(tmp_path / "src", [6, 5, 4], [3, 3, 3])
    d = build(DATASETS.get(source), 10, tmp_path / "out", source_dir=tmp_path / "src")
    card = (d / "README.md").read_text()
    assert "## Teacher overlap" in card and cite in card
    assert "resnet152" in card and "efficientnetv2-m-in21k" in card


def test_digits_card_has_no_overlap_note(digits_data):
    assert "Teacher overlap" not in (digits_data / "digits-lt10" / "README.md").read_text()
