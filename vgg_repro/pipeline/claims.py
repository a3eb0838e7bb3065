"""The paper's claims, and whether a run of the pipeline agrees with each.

:data:`CLAIMS` is the one table of claims: an id, the paper's statement (which names
the tables it rests on) and the rule that decides it on our numbers. The report
(:mod:`vgg_repro.pipeline.report`) and the documentation's results page both
import it. :func:`check_claims` applies the rules to the metrics of the
``evaluate`` and ``fuse`` stages and returns each verdict with its evidence as
numbers (:func:`format_evidence` writes them out), so no reader has to parse text.

A claim "holds" when our numbers go the paper's way by its rule; each of our errors
comes with its binomial standard error, since differences smaller than the
sampling error of a small validation set say little.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vgg_repro import models, paper

__all__ = ["CLAIMS", "Claim", "check_claims", "format_evidence", "std_error"]


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
        "is negative, and the better of D and E beats A (S=256, one test scale).",
    ),
    Claim(
        "lrn",
        "Local response normalisation does not improve configuration A: A-LRN is no "
        "better than A (Table 3).",
        "A-LRN's top-1 error is not lower than A's.",
    ),
    Claim(
        "scale_jitter",
        "Scale jittering at training time gives lower error than a fixed training scale (Table 3).",
        "For each of C, D and E, the jittered net, tested at the middle scale, beats both "
        "fixed-S nets.",
    ),
    Claim(
        "multi_scale",
        "Testing at several scales gives lower error than testing at one scale (Table 4 "
        "against Table 3).",
        "Three test scales give a lower top-1 error than one on average over the nets, and "
        "for most of them.",
    ),
    Claim(
        "dense_multi_crop",
        "Multi-crop and dense evaluation together give lower error than either alone (Table 5).",
        "For the jittered D and E, the combination beats dense and multi-crop evaluation.",
    ),
    Claim(
        "fusion",
        "The fusion of two networks gives lower error than each network alone (Table 6).",
        "The D and E fusion (multi-crop & dense) has a lower top-1 error than both nets.",
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


def _error(label: str, top1: float, n: int | None = None) -> dict:
    """An error as evidence: ours with its standard error (``n`` images), or the paper's."""
    item = {"kind": "error", "label": label, "top1_error": round(float(top1), 4)}
    if n is not None:
        item["std_error"] = round(std_error(top1, n), 4)
    return item


def format_evidence(items: Sequence[Mapping]) -> str:
    """Evidence as one line, the way the report and the docs show it.

    >>> format_evidence([{"kind": "error", "label": "A", "top1_error": 29.61, "std_error": 1.5},
    ...                  {"kind": "slope", "value": -0.915}])
    'A 29.6±1.5; slope -0.92 per layer'
    >>> format_evidence([{"kind": "count", "better": 7, "of": 12}, {"kind": "gain", "value": 0.25}])
    'better for 7 of 12 nets; mean top-1 gain +0.25 points'
    """
    parts = []
    for item in items:
        kind = item["kind"]
        if kind == "error":
            se = item.get("std_error")
            value = f"{item['top1_error']:.1f}" + (f"±{se:.1f}" if se is not None else "")
            parts.append(f"{item['label']} {value}")
        elif kind == "slope":
            parts.append(f"slope {item['value']:+.2f} per layer")
        elif kind == "count":
            parts.append(f"better for {item['better']} of {item['of']} nets")
        elif kind == "gain":
            parts.append(f"mean top-1 gain {item['value']:+.2f} points")
        else:
            raise ValueError(f"unknown evidence kind {kind!r}")
    return "; ".join(parts)


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _err(metrics: Mapping, stem: str, name: str) -> tuple[float, int] | None:
    entry = metrics.get(stem, {}).get(name)
    return (float(entry["top1_error"]), int(entry.get("n_images", 0))) if entry else None


def check_claims(metrics: Mapping[str, Mapping]) -> list[dict]:
    """Each claim of :data:`CLAIMS`: whether this run agrees, with its evidence.

    Args:
        metrics: stem (``D-jitter``, ``fusion-D+E``) -> the stage's metrics file.

    Returns:
        One dict per claim whose results were run (the others are left out), with
        the keys ``id``, ``holds``, ``ours`` and ``paper``; the last two are lists of
        evidence items (:func:`format_evidence`).
    """
    claims = []

    def add(cid: str, holds: bool, ours: list[dict], ref: list[dict]) -> None:
        claims.append({"id": cid, "holds": bool(holds), "ours": ours, "paper": ref})

    t3, t4, t5, t6 = paper.TABLE3, paper.TABLE4, paper.TABLE5, paper.TABLE6
    rows = {"s256": paper.S256, "s384": paper.S384, "jitter": paper.JITTER}
    single = {k: _err(metrics, k, "single-scale") for k in metrics}
    multi = {k: _err(metrics, k, "multi-scale") for k in metrics}

    deep = [n for n in ("A", "B", "D", "E") if single.get(f"{n}-s256")]
    if len(deep) == 4:
        xs = [models.num_weight_layers(n) for n in deep]
        ys = [single[f"{n}-s256"][0] for n in deep]
        slope = _slope(xs, ys)
        ref_slope = _slope(xs, [t3[(n, paper.S256)][0] for n in deep])
        add(
            "depth",
            slope < 0 and min(ys[2:]) < ys[0],
            [_error(n, *single[f"{n}-s256"]) for n in deep]
            + [{"kind": "slope", "value": round(slope, 4)}],
            [_error(n, t3[(n, paper.S256)][0]) for n in deep]
            + [{"kind": "slope", "value": round(ref_slope, 4)}],
        )
    if single.get("A-s256") and single.get("A-LRN-s256"):
        a, lrn = single["A-s256"], single["A-LRN-s256"]
        add(
            "lrn",
            lrn[0] >= a[0],
            [_error("A", *a), _error("A-LRN", *lrn)],
            [_error("A", t3[("A", paper.S256)][0]), _error("A-LRN", t3[("A-LRN", paper.S256)][0])],
        )
    nets = [n for n in "CDE" if all(single.get(f"{n}-{r}") for r in rows)]
    if nets:
        ours, ref, ok = [], [], True
        for n in nets:
            e = {r: single[f"{n}-{r}"] for r in rows}
            ok &= e["jitter"][0] < min(e["s256"][0], e["s384"][0])
            ours += [_error(f"{n} {r}", *e[r]) for r in rows]
            ref += [_error(f"{n} {r}", t3[(n, s)][0]) for r, s in rows.items()]
        add("scale_jitter", ok, ours, ref)
    pairs = [(single[k], multi[k]) for k in metrics if single.get(k) and multi.get(k)]
    if pairs:
        gains = [s[0] - m[0] for s, m in pairs]
        better = sum(g > 0 for g in gains)
        mean_gain = sum(gains) / len(gains)
        ref_pairs = [(t3[k], t4[k]) for k in t4 if k in t3]
        ref_gain = sum(a[0] - b[0] for a, b in ref_pairs) / len(ref_pairs)
        ref_better = sum(a[0] > b[0] for a, b in ref_pairs)
        add(
            "multi_scale",
            mean_gain > 0 and better > len(gains) / 2,
            [{"kind": "count", "better": better, "of": len(gains)}]
            + [{"kind": "gain", "value": round(mean_gain, 4)}],
            [{"kind": "count", "better": ref_better, "of": len(ref_pairs)}]
            + [{"kind": "gain", "value": round(ref_gain, 4)}],
        )
    protocols = {"dense": "multi-scale", "multi-crop": "multi-crop"}
    protocols["dense+multi-crop"] = "dense+multi-crop"
    jit = [n for n in "DE" if all(_err(metrics, f"{n}-jitter", p) for p in protocols.values())]
    if jit:
        ours, ref, ok = [], [], True
        for n in jit:
            e = {p: _err(metrics, f"{n}-jitter", name) for p, name in protocols.items()}
            ok &= e["dense+multi-crop"][0] < min(e["dense"][0], e["multi-crop"][0])
            ours += [_error(f"{n} {p}", *e[p]) for p in protocols]
            ref += [_error(f"{n} {p}", t5[(n, p)][0]) for p in protocols]
        add("dense_multi_crop", ok, ours, ref)
    fused = _err(metrics, "fusion-D+E", "dense+multi-crop")
    members = [_err(metrics, f"{n}-jitter", "dense+multi-crop") for n in "DE"]
    if fused and all(members):
        add(
            "fusion",
            fused[0] < min(m[0] for m in members),
            [_error("D+E", *fused), _error("D", *members[0]), _error("E", *members[1])],
            [
                _error("D+E", t6[(("D", "E"), "dense+multi-crop")][0]),
                _error("D", t5[("D", "dense+multi-crop")][0]),
                _error("E", t5[("E", "dense+multi-crop")][0]),
            ],
        )
    return claims
