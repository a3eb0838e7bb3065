"""The paper's claims, and whether a run of the pipeline agrees with each, by a paired test.

:data:`CLAIMS` is the one table of claims: an id, the paper's statement (which names
the tables it rests on) and the rule that decides it on our numbers. The report
(:mod:`vgg_repro.pipeline.report`) and the documentation's results page both
import it. :func:`check_claims` applies the rules to the per-image results of the
``evaluate`` and ``fuse`` stages and returns each verdict with its evidence as
numbers (:func:`format_evidence` writes them out), so no reader has to parse text.

Every comparison is paired, on the same validation images
(:mod:`vgg_repro.evaluation.paired`): the exact McNemar test for two nets or two
protocols, a paired bootstrap for a statistic of several (the slope over depth, the
mean gain of multi-scale testing), each with the interval (95%) of the difference.
A verdict is one of three: ``agrees`` (significant, the paper's way), ``disagrees``
(significant, the other way) and ``inconclusive``. A claim resting on several
comparisons agrees when all of them agree and disagrees when any disagrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vgg_repro import models, paper
from vgg_repro.evaluation.paired import compare, paired_bootstrap, verdict

__all__ = [
    "CLAIMS",
    "VERDICTS",
    "Claim",
    "check_claims",
    "combine",
    "format_evidence",
    "std_error",
]

VERDICTS = ("agrees", "disagrees", "inconclusive")


@dataclass(frozen=True)
class Claim:
    """One of the paper's conclusions (Sec. 4) and how a run decides it."""

    id: str
    statement: str
    rule: str


#: The paper's claims that the pipeline checks, in the order of the report.
CLAIMS: tuple[Claim, ...] = (
    Claim(
        "depth",
        "Classification error decreases with depth: the deeper configurations D and E "
        "have lower error than A and B (Table 3).",
        "The least-squares slope of top-1 error against weight layers over A, B, D and E "
        "(S=256, one test scale), with its paired bootstrap interval, is below 0.",
    ),
    Claim(
        "lrn",
        "Local response normalisation does not improve configuration A: A-LRN is no "
        "better than A (Table 3).",
        "McNemar test of A-LRN against A: the claim agrees when A-LRN is significantly "
        "worse; no significant difference, as in the paper, is inconclusive.",
    ),
    Claim(
        "one_by_one",
        "At the same depth, 3x3 convolutions beat 1x1 ones: configuration D has lower "
        "error than C (Table 3).",
        "McNemar test of D against C at each training scale (S=256, S=384, jittered).",
    ),
    Claim(
        "scale_jitter",
        "Scale jittering at training time gives lower error than a fixed training scale (Table 3).",
        "McNemar tests of the jittered net against both fixed-S nets, for C, D and E, "
        "tested at the middle scale.",
    ),
    Claim(
        "multi_scale",
        "Testing at several scales gives lower error than testing at one scale (Table 4 "
        "against Table 3).",
        "The mean over the nets of the gain of three test scales over one, with its "
        "paired bootstrap interval, is above 0.",
    ),
    Claim(
        "multi_crop",
        "Multi-crop evaluation gives slightly lower error than dense evaluation (Table 5).",
        "McNemar test of multi-crop against dense evaluation for the jittered D and E.",
    ),
    Claim(
        "dense_multi_crop",
        "Multi-crop and dense evaluation together give lower error than either alone (Table 5).",
        "McNemar tests of the combination against dense and against multi-crop "
        "evaluation, for the jittered D and E.",
    ),
    Claim(
        "fusion",
        "The fusion of two networks gives lower error than each network alone (Table 6).",
        "McNemar tests of the D and E fusion (multi-crop & dense) against each of the two nets.",
    ),
    Claim(
        "transfer_depth",
        "The deep nets' descriptors generalise to other datasets: a linear classifier on "
        "the fixed descriptors of D and E beats the less deep net A and a non-learned "
        "representation (Appendix B, Table 11).",
        "McNemar tests of D and of E against A and against the raw pixels of the centre "
        "crop, on the test images of a dataset that no net was trained on (error: the "
        "share of test images classified wrong).",
    ),
    Claim(
        "transfer_combination",
        "The descriptors of D and E concatenated transfer at least as well as each alone "
        "(Appendix B, Table 11).",
        "McNemar tests of D & E against D and against E on the same test images: agrees "
        "when significantly better than both, disagrees when significantly worse than "
        "either; no significant difference is inconclusive.",
    ),
)
CLAIM_IDS = tuple(c.id for c in CLAIMS)


def std_error(error_percent: float, n: int) -> float:
    """Binomial standard error of an error rate measured on ``n`` images, in percent.

    >>> round(std_error(20.0, 400), 2)
    2.0
    """
    p = error_percent / 100.0
    return 100.0 * math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def at_chance(correct: np.ndarray, num_classes: int, alpha: float = 0.05) -> bool:
    """Whether a top-1 accuracy is not significantly above chance (1 / classes).

    An exact one-sided binomial test of the number of images right. A net at chance
    is a failed run, never evidence for or against a claim.

    >>> at_chance(np.array([True] * 11 + [False] * 89), 10)
    True
    >>> at_chance(np.array([True] * 30 + [False] * 70), 10)
    False
    """
    from scipy.stats import binomtest

    right = int(np.count_nonzero(correct))
    test = binomtest(right, len(correct), 1.0 / num_classes, alternative="greater")
    return bool(test.pvalue >= alpha)


def combine(verdicts: Sequence[str]) -> str:
    """The verdict of a claim resting on several comparisons.

    >>> combine(["agrees", "agrees"]), combine(["agrees", "inconclusive"])
    ('agrees', 'inconclusive')
    >>> combine(["agrees", "disagrees", "inconclusive"])
    'disagrees'
    """
    if "disagrees" in verdicts:
        return "disagrees"
    return "agrees" if verdicts and all(v == "agrees" for v in verdicts) else "inconclusive"


# The evidence's sentences, with named fields. The report fills them in as they are;
# the docs make each one a gettext message and fill in its translation, so that the
# Arabic results page says "slope" in Arabic (docs/_ext/vgg_tables.py).
EVIDENCE_SENTENCES: dict[str, str] = {
    "at_chance": "at chance, so no evidence: {nets}",
    "count": "better for {better} of {of} nets",
    "slope": "slope {estimate} per layer",
    "slope_p": "slope {estimate} per layer, p = {p}",
    "gain": "mean top-1 gain {estimate} points",
    "gain_p": "mean top-1 gain {estimate} points, p = {p}",
}


def evidence_sentence(item: Mapping) -> tuple[str, dict[str, str]] | None:
    """The sentence of an evidence item: its key in :data:`EVIDENCE_SENTENCES` and its
    fields as text; ``None`` for an error or a comparison, which are notation
    (:func:`evidence_notation`).

    >>> evidence_sentence({"kind": "count", "better": 7, "of": 12})
    ('count', {'better': '7', 'of': '12'})
    >>> evidence_sentence({"kind": "slope", "value": 0.915, "low": 0.3, "high": 1.5, "p": 0.01})
    ('slope_p', {'estimate': '+0.92 [+0.30, +1.50]', 'p': '0.01'})
    """
    kind = item["kind"]
    if kind in ("error", "comparison"):
        return None
    if kind == "at_chance":
        return "at_chance", {"nets": ", ".join(item["nets"])}
    if kind == "count":
        return "count", {"better": str(item["better"]), "of": str(item["of"])}
    if kind in ("slope", "gain"):
        estimate = _signed(item["value"], 2)
        if "low" in item:
            estimate += f" [{_signed(item['low'], 2)}, {_signed(item['high'], 2)}]"
        if "p" in item:
            return f"{kind}_p", {"estimate": estimate, "p": f"{item['p']:.2g}"}
        return kind, {"estimate": estimate}
    raise ValueError(f"unknown evidence kind {kind!r}")


def evidence_notation(item: Mapping) -> tuple[str, str]:
    """An error or a comparison as (label, value): notation, the same in every language.

    >>> evidence_notation({"kind": "error", "label": "A", "top1_error": 29.61, "std_error": 1.5})
    ('A', '29.6±1.5')
    """
    if item["kind"] == "error":
        se = item.get("std_error")
        return item["label"], f"{item['top1_error']:.1f}" + (f"±{se:.1f}" if se is not None else "")
    if item["kind"] == "comparison":
        value = (
            f"{_signed(item['difference'], 1)} "
            f"[{_signed(item['low'], 1)}, {_signed(item['high'], 1)}], p = {item['p']:.2g}"
        )
        return item["label"], value
    raise ValueError(f"evidence kind {item['kind']!r} is a sentence, not notation")


def format_evidence(items: Sequence[Mapping]) -> str:
    """Evidence as one line, the way the report shows it.

    >>> format_evidence([{"kind": "error", "label": "A", "top1_error": 29.61, "std_error": 1.5}])
    'A 29.6±1.5'
    >>> format_evidence([{"kind": "comparison", "label": "D − C", "difference": -2.41,
    ...                   "low": -4.0, "high": -0.8, "p": 0.004, "verdict": "agrees"}])
    'D − C −2.4 [−4.0, −0.8], p = 0.004'
    >>> format_evidence([{"kind": "slope", "value": -0.915, "low": -1.5, "high": -0.3,
    ...                   "p": 0.01}])
    'slope −0.92 [−1.50, −0.30] per layer, p = 0.01'
    """
    parts = []
    for item in items:
        sentence = evidence_sentence(item)
        if sentence is None:
            parts.append(" ".join(evidence_notation(item)))
        else:
            key, fields = sentence
            parts.append(EVIDENCE_SENTENCES[key].format(**fields))
    return "; ".join(parts)


def _signed(value: float, digits: int) -> str:
    """A number with its sign, the minus as U+2212 (no line break inside ``-1.2``)."""
    text = f"{value:+.{digits}f}"
    return ("−" + text[1:]) if text.startswith("-") else text


def _slope(xs: Sequence[float], ys: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``ys`` (last axis: one value per x) against ``xs``."""
    x = np.asarray(xs, dtype=float)
    x = x - x.mean()
    return (ys - ys.mean(axis=-1, keepdims=True)) @ x / (x @ x)


def _error(label: str, top1: float, n: int | None = None) -> dict:
    """An error as evidence: ours with its standard error (``n`` images), or the paper's."""
    item = {"kind": "error", "label": label, "top1_error": round(float(top1), 4)}
    if n is not None:
        item["std_error"] = round(std_error(top1, n), 4)
    return item


def check_claims(
    metrics: Mapping[str, Mapping],
    correct: Mapping[tuple[str, str], np.ndarray],
    transfer: Mapping | None = None,
) -> list[dict]:
    """Each claim of :data:`CLAIMS`: the verdict of this run, with its evidence.

    Args:
        metrics: stem (``D-jitter``, ``fusion-D+E``) -> the stage's metrics file.
        correct: ``(stem, setting)`` -> per validation image, whether the top-1 class
            is right (the same images, in the same order, for every entry).
        transfer: the transfer stage's results, if run: under ``descriptors``, each
            descriptor's metrics (``value``, ``num_classes``...); under ``correct``, for
            each descriptor, whether each test image of the transfer set was classified
            right.

    Returns:
        One dict per claim whose results were run (the others are left out), with
        the keys ``id``, ``verdict``, ``holds`` (it agrees), ``ours`` and ``paper``;
        the last two are lists of evidence items (:func:`format_evidence`).
    """
    claims = []
    t3, t4, t5, t6 = paper.TABLE3, paper.TABLE4, paper.TABLE5, paper.TABLE6
    if transfer:  # the transfer set's results under the stem "transfer", for add()'s check
        descriptors = transfer["descriptors"]
        metrics = {**metrics, "transfer": {n: dict(e) for n, e in descriptors.items()}}
        correct = {
            **correct,
            **{("transfer", n): np.asarray(c) for n, c in transfer["correct"].items()},
        }
    rows = {"s256": paper.S256, "s384": paper.S384, "jitter": paper.JITTER}

    used: set[tuple[str, str]] = set()  # the results the claim being built rests on

    def have(*keys: tuple[str, str]) -> bool:
        return all(k in correct for k in keys)

    def err(key: tuple[str, str], label: str) -> dict:
        used.add(key)
        return _error(label, metrics[key[0]][key[1]]["top1_error"], len(correct[key]))

    def pair(base: tuple[str, str], new: tuple[str, str], label: str, sign: int = -1) -> dict:
        used.update((base, new))
        result = compare(correct[base], correct[new], paper_sign=sign)
        return {"kind": "comparison", "label": label, **result.as_dict()}

    def add(cid: str, verdict_: str, ours: list[dict], ref: list[dict]) -> None:
        # A net at chance is a failed run: the claim is left undecided, and says why.
        chance = sorted(
            f"{stem} {setting}"
            for stem, setting in used
            if at_chance(correct[(stem, setting)], int(metrics[stem][setting]["num_classes"]))
        )
        used.clear()
        if chance:
            verdict_ = "inconclusive"
            ours = [*ours, {"kind": "at_chance", "nets": chance}]
        claims.append(
            {"id": cid, "verdict": verdict_, "holds": verdict_ == "agrees", "ours": ours}
            | {"paper": ref}
        )

    single = "single-scale"
    deep = [(f"{n}-s256", single) for n in ("A", "B", "D", "E")]
    if have(*deep):
        layers = [models.num_weight_layers(k[0][:-5]) for k in deep]

        def slope(*samples, axis=-1):  # errors in percent from per-image correctness
            errors = np.stack([100.0 * (1 - s.mean(axis=axis)) for s in samples], axis=-1)
            return _slope(layers, errors)

        value, low, high, p = paired_bootstrap(slope, [correct[k] for k in deep])
        ref_slope = _slope(layers, np.array([t3[(k[0][:-5], paper.S256)][0] for k in deep]))
        ours = [err(k, k[0][:-5]) for k in deep]
        ours.append({"kind": "slope", "value": round(value, 4), "low": round(low, 4)})
        ours[-1] |= {"high": round(high, 4), "p": float(f"{p:.4g}")}
        ref = [_error(k[0][:-5], t3[(k[0][:-5], paper.S256)][0]) for k in deep]
        ref.append({"kind": "slope", "value": round(float(ref_slope), 4)})
        add("depth", verdict(low, high, p, -1), ours, ref)
    a, lrn = ("A-s256", single), ("A-LRN-s256", single)
    if have(a, lrn):
        comparison = pair(a, lrn, "A-LRN − A", sign=+1)  # the paper: LRN does not help
        ours = [err(a, "A"), err(lrn, "A-LRN"), comparison]
        ref = [_error("A", t3[("A", paper.S256)][0]), _error("A-LRN", t3[("A-LRN", paper.S256)][0])]
        add("lrn", comparison["verdict"], ours, ref)
    keys = [((f"C-{r}", single), (f"D-{r}", single), r) for r in rows]
    if all(have(c, d) for c, d, _ in keys):
        tests = [pair(c, d, f"D − C {r}") for c, d, r in keys]
        ours = [e for c, d, r in keys for e in (err(c, f"C {r}"), err(d, f"D {r}"))] + tests
        ref = [_error(f"{n} {r}", t3[(n, s)][0]) for r, s in rows.items() for n in "CD"]
        add("one_by_one", combine([t["verdict"] for t in tests]), ours, ref)
    nets = [n for n in "CDE" if have(*[(f"{n}-{r}", single) for r in rows])]
    if nets:
        ours, ref, tests = [], [], []
        for n in nets:
            jit = (f"{n}-jitter", single)
            ours += [err((f"{n}-{r}", single), f"{n} {r}") for r in rows]
            tests += [
                pair((f"{n}-{r}", single), jit, f"{n} jitter − {r}") for r in ("s256", "s384")
            ]
            ref += [_error(f"{n} {r}", t3[(n, s)][0]) for r, s in rows.items()]
        add("scale_jitter", combine([t["verdict"] for t in tests]), ours + tests, ref)
    stems = [s for s in metrics if have((s, single), (s, "multi-scale")) and "fusion" not in s]
    if stems:

        def gain(*samples, axis=-1):  # mean over nets of single minus multi-scale error
            pairs = zip(samples[0::2], samples[1::2], strict=True)
            return np.mean([100.0 * (m.mean(axis=axis) - s.mean(axis=axis)) for s, m in pairs], 0)

        samples = [correct[(s, k)] for s in stems for k in (single, "multi-scale")]
        used.update((s, k) for s in stems for k in (single, "multi-scale"))
        value, low, high, p = paired_bootstrap(gain, samples)
        better = sum(
            metrics[s]["multi-scale"]["top1_error"] < metrics[s][single]["top1_error"]
            for s in stems
        )
        ref_pairs = [(t3[k], t4[k]) for k in t4 if k in t3]
        ref_gain = sum(x[0] - y[0] for x, y in ref_pairs) / len(ref_pairs)
        ref_better = sum(x[0] > y[0] for x, y in ref_pairs)
        ours = [{"kind": "count", "better": better, "of": len(stems)}]
        ours.append({"kind": "gain", "value": round(value, 4), "low": round(low, 4)})
        ours[-1] |= {"high": round(high, 4), "p": float(f"{p:.4g}")}
        ref = [{"kind": "count", "better": ref_better, "of": len(ref_pairs)}]
        ref.append({"kind": "gain", "value": round(ref_gain, 4)})
        add("multi_scale", verdict(-high, -low, p, -1), ours, ref)
    protocols = {"dense": "multi-scale", "multi-crop": "multi-crop"}
    protocols["dense+multi-crop"] = "dense+multi-crop"
    jit = [n for n in "DE" if have(*[(f"{n}-jitter", p) for p in protocols.values()])]
    if jit:
        ours, ref, crop_tests, combo_tests = [], [], [], []
        for n in jit:
            key = {p: (f"{n}-jitter", name) for p, name in protocols.items()}
            ours += [err(key[p], f"{n} {p}") for p in protocols]
            ref += [_error(f"{n} {p}", t5[(n, p)][0]) for p in protocols]
            crop_tests.append(pair(key["dense"], key["multi-crop"], f"{n} multi-crop − dense"))
            combo_tests += [
                pair(key[p], key["dense+multi-crop"], f"{n} both − {p}")
                for p in ("dense", "multi-crop")
            ]
        singles = [e for e in ours if e["label"].split()[1] in ("dense", "multi-crop")]
        refs = [e for e in ref if e["label"].split()[1] in ("dense", "multi-crop")]
        add("multi_crop", combine([t["verdict"] for t in crop_tests]), singles + crop_tests, refs)
        add(
            "dense_multi_crop",
            combine([t["verdict"] for t in combo_tests]),
            ours + combo_tests,
            ref,
        )
    fused = ("fusion-D+E", "dense+multi-crop")
    members = [(f"{n}-jitter", "dense+multi-crop") for n in "DE"]
    if have(fused, *members):
        tests = [pair(m, fused, f"D+E − {m[0][0]}") for m in members]
        ours = [err(fused, "D+E"), err(members[0], "D"), err(members[1], "E"), *tests]
        ref = [
            _error("D+E", t6[(("D", "E"), "dense+multi-crop")][0]),
            _error("D", t5[("D", "dense+multi-crop")][0]),
            _error("E", t5[("E", "dense+multi-crop")][0]),
        ]
        add("fusion", combine([t["verdict"] for t in tests]), ours, ref)
    if transfer:
        _transfer_claims(transfer, add, used)
    order = {cid: i for i, cid in enumerate(CLAIM_IDS)}
    return sorted(claims, key=lambda c: order[c["id"]])


def _transfer_claims(transfer: Mapping, add, used: set) -> None:
    """The two claims of Appendix B, from the transfer stage's per-image results.

    The descriptors' errors go into the same paired tests as the other claims'. The
    raw-pixel baseline is not a net: a baseline at chance is no failed run, so it
    takes no part in the at-chance check.
    """
    entries, right = transfer["descriptors"], transfer["correct"]
    t11 = paper.TABLE11
    caltech = paper.TABLE11_DATASETS.index("Caltech-101")

    def err(name: str) -> dict:
        used.add(("transfer", name))
        return _error(name, 100.0 - entries[name]["value"], len(right[name]))

    def pair(base: str, new: str) -> dict:
        if base != "pixels":
            used.add(("transfer", base))
        used.add(("transfer", new))
        result = compare(right[base], right[new], paper_sign=-1)
        return {"kind": "comparison", "label": f"{new} − {base}", **result.as_dict()}

    def ref(name: str) -> dict:  # Table 11, Caltech-101: mean class recall -> error
        return _error(f"{name} Caltech-101", 100.0 - t11[name][caltech][0])

    if all(k in right for k in ("A", "D", "E", "pixels")):
        tests = [pair(base, deep) for deep in "DE" for base in ("A", "pixels")]
        ours = [err("A"), err("D"), err("E")]
        ours.append(_error("pixels", 100.0 - entries["pixels"]["value"], len(right["pixels"])))
        add("transfer_depth", combine([t["verdict"] for t in tests]), ours + tests, [
            ref("D"), ref("E")
        ])  # fmt: skip
    if all(k in right for k in ("D", "E", "D+E")):
        tests = [pair(single, "D+E") for single in "DE"]
        ours = [err("D+E"), err("D"), err("E"), *tests]
        add("transfer_combination", combine([t["verdict"] for t in tests]), ours, [
            ref("D+E"), ref("D"), ref("E")
        ])  # fmt: skip
