"""Paired comparisons of classifiers tested on the same images.

Every claim of the paper compares errors measured on the same validation images, so
the comparisons are paired: the question is how often the two classifiers disagree,
not how far apart two independent error rates are.

- :func:`mcnemar`: the exact McNemar test of two classifiers, a two-sided binomial
  test on the images that exactly one of them gets right (``scipy.stats.binomtest``).
  It is exact at any sample size and uses only the disagreements, which is why it is
  the test for a pair of nets or of protocols.
- :func:`paired_bootstrap`: the percentile bootstrap over images of any statistic of
  several classifiers' per-image correctness, with images resampled jointly
  (``scipy.stats.bootstrap`` with ``paired=True``). It gives the interval (95%) of a
  difference, and decides the claims that no exact test covers: a slope over four
  nets, a mean gain over twelve.
- :func:`compare`: both for a pair: the difference in top-1 error, its interval, the
  McNemar p-value and the verdict at level 0.05.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "Comparison", "compare", "mcnemar", "paired_bootstrap", "verdict"]

ALPHA = 0.05  # two-sided level of every test, and 95% intervals
RESAMPLES = 2000  # bootstrap resamples: the interval's ends move by ~0.1 point between seeds
SEED = 2015  # fixed, so that a rerun on the same numbers gives the same interval


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value of two classifiers on the same images.

    Only the discordant images count: ``b`` right for A and wrong for B, ``c`` the
    reverse; under the null hypothesis each is a fair coin, so the p-value is that of
    ``b`` successes in ``b + c`` fair trials.

    >>> round(mcnemar([True] * 10 + [False] * 2, [False] * 10 + [True] * 2), 4)
    0.0386
    >>> mcnemar([True, False], [True, False])
    1.0
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_bootstrap(
    statistic: Callable[..., np.ndarray],
    samples: Sequence[Sequence[bool]],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float, float, float]:
    """A statistic of per-image correctness, with its 95% paired bootstrap interval.

    Args:
        statistic: ``statistic(*samples, axis=-1)`` -> the value (vectorised: each
            sample may carry leading resample dimensions).
        samples: per classifier, whether it got each image right (same images, same
            order).
        resamples: bootstrap resamples.
        seed: of the resampling.

    Returns:
        ``(value, low, high, p)``: the statistic on all images, the percentile
        interval, and the two-sided bootstrap p-value of "the statistic is 0" (twice
        the share of resamples on the far side of 0, at least ``1 / resamples``).
    """
    data = [np.asarray(s, dtype=float) for s in samples]
    result = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=1 - ALPHA,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    value = float(statistic(*data, axis=-1))
    spread = result.bootstrap_distribution
    side = min((spread <= 0).mean(), (spread >= 0).mean())
    p = float(min(1.0, max(2 * side, 1 / resamples)))
    low, high = result.confidence_interval
    return value, float(low), float(high), p


def verdict(low: float, high: float, p: float, paper_sign: int) -> str:
    """``agrees``, ``disagrees`` or ``inconclusive`` for a difference and the paper's sign.

    Significant at :data:`ALPHA` means ``p < ALPHA`` with an interval that excludes 0;
    then the sign of the difference against the paper's (``-1``: the paper's change
    lowers the error) decides. An interval that spans 0 is inconclusive.

    >>> verdict(-3.0, -1.0, 0.001, -1), verdict(1.0, 3.0, 0.001, -1), verdict(-1.0, 2.0, 0.4, -1)
    ('agrees', 'disagrees', 'inconclusive')
    """
    if p >= ALPHA or low <= 0 <= high:
        return "inconclusive"
    sign = -1 if high < 0 else 1
    return "agrees" if sign == paper_sign else "disagrees"


@dataclass(frozen=True)
class Comparison:
    """Classifier B against A on the same images: B's top-1 error minus A's, in points."""

    difference: float
    low: float
    high: float
    p: float
    verdict: str

    def as_dict(self) -> dict:
        return {
            "difference": round(self.difference, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "p": float(f"{self.p:.4g}"),
            "verdict": self.verdict,
        }


def _error_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    # Correct is 1: B's error minus A's error = A's accuracy minus B's, in points.
    return 100.0 * (a.mean(axis=axis) - b.mean(axis=axis))


def compare(
    correct_a: Sequence[bool], correct_b: Sequence[bool], paper_sign: int = -1
) -> Comparison:
    """B against A: the difference in top-1 error, its interval, McNemar's p, the verdict.

    Args:
        correct_a: per image, whether A (the paper's baseline) is right.
        correct_b: the same for B (the paper's better setting, by default).
        paper_sign: the sign of B's error minus A's that the paper reports (-1: B is
            better).
    """
    value, low, high, _ = paired_bootstrap(_error_difference, [correct_a, correct_b])
    p = mcnemar(correct_a, correct_b)
    return Comparison(value, low, high, p, verdict(low, high, p, paper_sign))
