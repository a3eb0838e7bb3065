"""The paper's results (Tables 3 to 6 on ImageNet, Table 11 on other datasets) as data.

Every number is copied from the paper (Simonyan & Zisserman, ICLR 2015, Sec. 4)
via the project's fact sheet; nothing here is computed. Errors are top-1 / top-5
error in percent on the ILSVRC-2012 validation set.

A training scale is written ``(S_min, S_max)``: ``(256, 256)`` is fixed S=256,
``(256, 512)`` is scale jittering S ~ U[256, 512] (Sec. 3.1). :func:`lookup`
finds the paper's figure for one evaluation setting, or ``None``::

    >>> lookup(["D"], [(256, 512)], "dense", [(384,)])
    PaperResult(table='Table 3', top1=25.6, top5=8.1, top5_test=None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from vgg_repro.evaluation import scales as scale_rule  # the one rule for Q (Sec. 3.2)
from vgg_repro.models import canonical_name

__all__ = [
    "JITTER",
    "ILSVRC_SUBMISSION_7_NETS",
    "TABLE3",
    "TABLE4",
    "TABLE5",
    "TABLE6",
    "TABLE11",
    "TABLE11_DATASETS",
    "PaperResult",
    "lookup",
]

S256, S384 = (256, 256), (384, 384)
JITTER = (256, 512)  # Sec. 3.1: S randomly sampled from [S_min, S_max] = [256, 512]

# Table 3: single test scale, dense evaluation. Q = S for fixed S, Q = 384 for jittered S.
TABLE3: dict[tuple[str, tuple[int, int]], tuple[float, float]] = {
    ("A", S256): (29.6, 10.4),
    ("A-LRN", S256): (29.7, 10.5),
    ("B", S256): (28.7, 9.9),
    ("C", S256): (28.1, 9.4),
    ("C", S384): (28.1, 9.3),
    ("C", JITTER): (27.3, 8.8),
    ("D", S256): (27.0, 8.8),
    ("D", S384): (26.8, 8.7),
    ("D", JITTER): (25.6, 8.1),
    ("E", S256): (27.3, 9.0),
    ("E", S384): (26.9, 8.7),
    ("E", JITTER): (25.5, 8.0),
}

# Table 4: multi-scale dense evaluation, Q in {S-32, S, S+32} (fixed S) or {256, 384, 512}.
TABLE4: dict[tuple[str, tuple[int, int]], tuple[float, float]] = {
    ("B", S256): (28.2, 9.6),
    ("C", S256): (27.7, 9.2),
    ("C", S384): (27.8, 9.2),
    ("C", JITTER): (26.3, 8.2),
    ("D", S256): (26.6, 8.6),
    ("D", S384): (26.5, 8.6),
    ("D", JITTER): (24.8, 7.5),
    ("E", S256): (26.9, 8.7),
    ("E", S384): (26.7, 8.6),
    ("E", JITTER): (24.8, 7.5),
}

# Table 5: D and E trained with jittered S, tested at Q in {256, 384, 512}.
TABLE5: dict[tuple[str, str], tuple[float, float]] = {
    ("D", "dense"): (24.8, 7.5),
    ("D", "multi-crop"): (24.6, 7.5),
    ("D", "dense+multi-crop"): (24.4, 7.2),
    ("E", "dense"): (24.8, 7.5),
    ("E", "multi-crop"): (24.6, 7.4),
    ("E", "dense+multi-crop"): (24.4, 7.1),
}

# Table 6: fusion of D and E (both jittered, Q in {256, 384, 512}):
# (top-1 val, top-5 val, top-5 test or None where the paper gives none).
TABLE6: dict[tuple[tuple[str, ...], str], tuple[float, float, float | None]] = {
    (("D", "E"), "dense"): (24.0, 7.1, 7.0),
    (("D", "E"), "multi-crop"): (23.9, 7.2, None),
    (("D", "E"), "dense+multi-crop"): (23.7, 6.8, 6.8),
}
# Table 6: the ILSVRC-2014 submission, 7 nets. Which 7 nets is not in the fact
# sheet, so lookup() never matches it; it is kept for reports.
ILSVRC_SUBMISSION_7_NETS = (24.7, 7.5, 7.3)

# Appendix B, Table 11: the descriptors of the ImageNet-trained nets, fixed, with a
# linear SVM on each dataset. VOC: mean average precision (%); Caltech: mean class
# recall (%) over random splits, with the ± the paper gives (30 training images per
# class for Caltech-101, 60 for Caltech-256).
TABLE11_DATASETS = ("VOC-2007", "VOC-2012", "Caltech-101", "Caltech-256")
TABLE11: dict[str, tuple[float, float, tuple[float, float], tuple[float, float]]] = {
    "D": (89.3, 89.0, (91.8, 1.0), (85.0, 0.2)),
    "E": (89.3, 89.0, (92.3, 0.5), (85.1, 0.3)),
    "D+E": (89.7, 89.3, (92.7, 0.5), (86.2, 0.3)),
}


class PaperResult(NamedTuple):
    """One of the paper's figures: which table, top-1 and top-5 val error (%)."""

    table: str
    top1: float
    top5: float
    top5_test: float | None = None


def lookup(
    archs: Sequence[str],
    train_scales: Sequence[tuple[int, int] | None],
    protocol: str,
    test_scales: Sequence[Sequence[int]],
) -> PaperResult | None:
    """The paper's result for an evaluation setting, or ``None`` if it has none.

    Args:
        archs: configuration of each fused net (one for a single net).
        train_scales: ``(S_min, S_max)`` of each net (``None``: unknown).
        protocol: ``"dense"``, ``"multi-crop"`` or ``"dense+multi-crop"``.
        test_scales: the test scales Q of each net.

    >>> lookup(["vgg16"], [(256, 256)], "dense", [(224, 256, 288)]).table
    'Table 4'
    >>> lookup(["E", "D"], [(256, 512)] * 2, "dense+multi-crop", [(256, 384, 512)] * 2)
    PaperResult(table='Table 6', top1=23.7, top5=6.8, top5_test=6.8)
    >>> lookup(["D"], [(256, 256)], "dense", [(300,)]) is None
    True
    """
    if not archs or None in train_scales or len({len(archs), len(train_scales)}) != 1:
        return None
    names = [canonical_name(a) for a in archs]
    scales = [tuple(sorted(int(q) for q in qs)) for qs in test_scales]
    trains = [tuple(s) for s in train_scales]
    if len(names) == 1:
        name, train, qs = names[0], trains[0], scales[0]
        if protocol == "dense" and list(qs) == scale_rule.test_scales(train, "single"):
            row = TABLE3.get((name, train))
            return PaperResult("Table 3", *row) if row else None
        if list(qs) != scale_rule.test_scales(train, "multi"):
            return None
        if protocol == "dense":
            row = TABLE4.get((name, train))
            return PaperResult("Table 4", *row) if row else None
        row = TABLE5.get((name, protocol)) if train == JITTER else None
        return PaperResult("Table 5", *row) if row else None
    multi = scale_rule.test_scales(JITTER, "multi")
    if all(t == JITTER for t in trains) and all(list(qs) == multi for qs in scales):
        row = TABLE6.get((tuple(sorted(names)), protocol))
        return PaperResult("Table 6", *row) if row else None
    return None
