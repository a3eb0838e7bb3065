"""The paired tests behind the claims (vgg_repro.evaluation.paired), against answers
computed by hand."""

from __future__ import annotations

from math import comb, sqrt

import numpy as np
import pytest

from vgg_repro.evaluation.paired import compare, mcnemar, paired_bootstrap, verdict


def _table(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image correctness of A and B with the given 2x2 table of agreements."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_is_the_exact_binomial_test_on_the_disagreements():
    a, b = _table(both=30, only_a=10, only_b=2, neither=8)
    # By hand: two-sided, 2 * P(X <= 2) for X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 2^12.
    assert mcnemar(a, b) == pytest.approx(2 * (comb(12, 0) + comb(12, 1) + comb(12, 2)) / 4096)
    assert mcnemar(a, b) == pytest.approx(158 / 4096)
    assert mcnemar(b, a) == pytest.approx(158 / 4096)  # symmetric
    # The agreements do not matter, only the 12 disagreements.
    assert mcnemar(*_table(both=900, only_a=10, only_b=2, neither=300)) == pytest.approx(158 / 4096)
    assert mcnemar(*_table(both=5, only_a=0, only_b=0, neither=5)) == 1.0


def test_bootstrap_of_identical_classifiers_is_exactly_zero():
    a, _ = _table(both=40, only_a=0, only_b=0, neither=10)
    value, low, high, p = paired_bootstrap(
        lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), [a, a]
    )
    assert (value, low, high, p) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_interval_of_a_known_difference():
    """B wrong on 200 of the 2000 images that A gets right, right nowhere A is wrong: the
    error difference is 10 points, and its 95% interval is the binomial one,
    10 +- 1.96 * sqrt(0.1 * 0.9 / 2000) * 100 = 10 +- 1.31 points, to resampling noise."""
    a, b = _table(both=1600, only_a=200, only_b=0, neither=200)
    result = compare(a, b, paper_sign=-1)
    half = 1.96 * sqrt(0.1 * 0.9 / 2000) * 100
    assert result.difference == pytest.approx(10.0)
    assert result.low == pytest.approx(10.0 - half, abs=0.3)
    assert result.high == pytest.approx(10.0 + half, abs=0.3)
    assert result.verdict == "disagrees"  # B is worse, the paper said better


def test_an_interval_that_spans_zero_is_inconclusive():
    assert verdict(-1.5, 0.5, 0.3, paper_sign=-1) == "inconclusive"
    assert verdict(-1.5, 0.5, 0.01, paper_sign=-1) == "inconclusive"  # p alone is not enough
    a, b = _table(both=400, only_a=6, only_b=4, neither=90)
    result = compare(a, b)
    assert result.low < 0 < result.high and result.verdict == "inconclusive"
    assert result.p == pytest.approx(sum(comb(10, k) for k in (0, 1, 2, 3, 4)) * 2 / 1024)


def test_significant_differences_agree_or_disagree_with_the_papers_sign():
    a, b = _table(both=400, only_a=2, only_b=30, neither=68)  # B better
    assert compare(a, b, paper_sign=-1).verdict == "agrees"
    assert compare(a, b, paper_sign=+1).verdict == "disagrees"
    assert compare(a, b).difference == pytest.approx(-100 * 28 / 500)
