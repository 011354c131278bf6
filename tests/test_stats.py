"""Statistics over seeds against hand-computed intervals (the t quantiles written out, not from scipy)."""

from __future__ import annotations

import math

import pytest

from ltbench.stats import paired, summarize, t_quantile

# Student's t with 2 degrees of freedom has the closed-form CDF F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
# F(t) = 0.975  <=>  t / sqrt(2 + t^2) = 0.95  <=>  t^2 = 2 * 0.95^2 / (1 - 0.95^2) = 1.805 / 0.0975.
T2 = math.sqrt(2 * 0.95**2 / (1 - 0.95**2))  # 4.3026527...
# With 1 degree of freedom t is Cauchy: F(t) = 1/2 + atan(t) / pi, so t = tan(pi * (0.975 - 1/2)).
T1 = math.tan(math.pi * 0.475)  # 12.7062047...


def test_t_quantiles_match_the_closed_forms():
    assert math.isclose(T2, 4.302652729911275, abs_tol=1e-9)
    assert t_quantile(0.975, 2) == pytest.approx(T2, rel=1e-10)
    assert t_quantile(0.975, 1) == pytest.approx(T1, rel=1e-10)


def test_three_seed_interval_by_hand():
    s = summarize([60.0, 65.0, 70.0])
    # mean 65, sample std sqrt((25 + 0 + 25) / 2) = 5, half-width T2 * 5 / sqrt(3) = 12.4207
    half = T2 * 5 / math.sqrt(3)
    assert (s.n, s.mean, s.std) == (3, 65.0, pytest.approx(5.0))
    assert (s.lo, s.hi) == (pytest.approx(65 - half), pytest.approx(65 + half))
    assert s.lo == pytest.approx(52.5793, abs=1e-4) and s.contains_zero is False


def test_two_seed_interval_uses_one_degree_of_freedom():
    s = summarize([1.0, 3.0])  # mean 2, std sqrt(2), standard error 1
    assert (s.lo, s.hi) == (pytest.approx(2 - T1), pytest.approx(2 + T1))
    assert s.contains_zero is True


def test_one_value_has_no_std_and_no_interval():
    s = summarize([42.0])
    assert (s.mean, s.std, s.lo, s.hi, s.contains_zero) == (42.0, None, None, None, None)
    assert summarize([]).mean is None


def test_paired_difference_uses_only_common_seeds():
    a = {0: 70.0, 1: 72.0, 2: 75.0, 3: 99.0}  # seed 3 has no partner: left out
    b = {0: 68.0, 1: 69.0, 2: 71.0}
    s, seeds = paired(a, b)
    # differences 2, 3, 4: mean 3, std 1, half-width T2 / sqrt(3) = 2.4841
    assert seeds == [0, 1, 2] and s.mean == pytest.approx(3.0) and s.std == pytest.approx(1.0)
    assert (s.lo, s.hi) == (pytest.approx(3 - T2 / math.sqrt(3)), pytest.approx(3 + T2 / math.sqrt(3)))
    assert s.contains_zero is False
    s, _ = paired({0: 1.0, 1: 3.0, 2: 5.0}, {0: 2.0, 1: 2.0, 2: 2.0})  # differences -1, 1, 3: std 2
    assert s.lo == pytest.approx(1 - T2 * 2 / math.sqrt(3)) and s.contains_zero is True
    # the order matters: a − b, not b − a
    assert paired(b, a)[0].mean == pytest.approx(-3.0)
