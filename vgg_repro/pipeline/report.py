"""Stage ``report``: Tables 3 to 6 and 11 for what was run, and the check of the paper's claims.

    python -m vgg_repro.pipeline.report

Reads the metrics files of the ``evaluate``, ``fuse`` and ``transfer`` stages and writes

- ``reports/results.json``: every result as a row with typed fields (the nets, the
  training scale ``[lo, hi]``, the protocol, the test scales, the errors and, where
  the paper has the same setting, its numbers), and the claims with their evidence
  as numbers (:mod:`vgg_repro.pipeline.claims`); the docs render this file;
- ``reports/report.md``: the same in the paper's table layout
  (:func:`vgg_repro.evaluation.tables.render_table`) and the claims in words;
- ``reports/depth.csv``: top-1 / top-5 error against weight layers (Table 3, S=256);
- ``metrics/summary/*.json``: the compact metrics of ``dvc metrics show`` (one file per
  row, transfer descriptor and claim; :func:`write_summary`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from vgg_repro import models, paper
from vgg_repro.errors import ConfigError, VGGReproError
from vgg_repro.evaluation.protocols import crop_grid
from vgg_repro.evaluation.scales import test_scales
from vgg_repro.evaluation.tables import render_table
from vgg_repro.files import write_text
from vgg_repro.pipeline.claims import (
    CLAIMS,
    VERDICTS,
    at_chance,
    check_claims,
    format_evidence,
    std_error,
)
from vgg_repro.pipeline.common import (
    DATA_INFO,
    FUSION,
    METRICS,
    PAPER_TRAIN_SCALE,
    POSTERIORS,
    REPORTS,
    ROWS,
    load_profile,
    run_stage,
    write_json,
)

__all__ = [
    "TABLE11",
    "geometry",
    "load_transfer",
    "load_metrics",
    "main",
    "result_rows",
    "row_training",
    "stated_deviations",
    "training_runs",
    "write_report",
]

# The evaluate stage's names -> which of the paper's preset test scales they use.
_PRESET = {"single-scale": "single"}


def load_metrics(folder: Path = METRICS) -> dict[str, dict]:
    """Every metrics file of the evaluate and fuse stages, by stem (``D-jitter``...)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def load_correct(metrics: dict[str, dict], folder: Path = POSTERIORS) -> dict:
    """Per ``(stem, setting)`` of ``metrics``, whether each validation image's top-1 class
    is right, from the posteriors the evaluate and fuse stages saved.

    Raises:
        VGGReproError: a posteriors file is missing, or two stages evaluated other
            images (the paired tests need the same images in the same order).
    """
    import torch

    from vgg_repro.evaluation.protocols import topk_correct

    correct, files = {}, None
    for stem, entries in metrics.items():
        try:
            labels = torch.from_numpy(np.load(folder / stem / "labels.npy"))
            own = (folder / stem / "files.txt").read_text()
            for setting in entries:
                posteriors = torch.from_numpy(np.load(folder / stem / f"{setting}.npy"))
                correct[(stem, setting)] = topk_correct(posteriors, labels, 1).numpy()
        except OSError as err:
            raise VGGReproError(
                f"cannot read the posteriors of {stem} in {folder / stem}: {err}; run its "
                "stage first (`dvc repro`)"
            ) from None
        if files is not None and own != files:
            raise VGGReproError(
                f"{folder / stem} holds posteriors of other images than the other stages': "
                "evaluate every net on the same data (`dvc repro`)"
            )
        files = own
    return correct


# The transfer stage's output (vgg_repro.pipeline.transfer.TABLE11_PATH; a test checks
# that the two agree): read here without importing that stage's descriptor code.
TABLE11 = METRICS / "transfer" / "table11.json"


def load_transfer(path: Path = TABLE11, folder: Path = POSTERIORS / "transfer") -> dict | None:
    """The transfer stage's metrics and per-image results, or None if it has not run.

    Returns:
        The stage's ``table11.json`` with ``correct`` added: descriptor -> per test
        image, whether it was classified right (single-label data only).
    """
    if not path.is_file():
        return None
    table = json.loads(path.read_text())
    correct = {}
    for name in table.get("descriptors", {}):
        file = folder / f"{name}.npy"
        if file.is_file():
            correct[name] = np.load(file)
    return table | {"correct": correct}


def transfer_rows(transfer: dict | None) -> list[dict]:
    """Table 11's rows: per descriptor, ours (percent, with its standard error) and the
    paper's four datasets where it has the same descriptor."""
    if not transfer:
        return []
    rows = []
    order = ["A", "B", "C", "D", "E", "D+E", "pixels"]  # Table 1's order, then the others
    by_order = sorted(transfer["descriptors"], key=lambda n: (order + [n]).index(n))
    for name in by_order:
        entry = transfer["descriptors"][name]
        ref = paper.TABLE11.get(name)
        # Caltech's entries carry the paper's ± over splits; the table shows the mean.
        means = None if ref is None else [r[0] if isinstance(r, tuple) else r for r in ref]
        se = entry.get("std_error")
        rows.append(
            {
                "descriptor": name,
                "layers": models.num_weight_layers(name) if name in tuple("ABCDE") else None,
                "metric": entry["metric"],
                "value": round(float(entry["value"]), 4),
                "std_error": None if se is None else round(float(se), 4),
                "dim": entry["dim"],
                "C": entry["C"],
                "paper": None
                if means is None
                else dict(zip(paper.TABLE11_DATASETS, means, strict=True)),
            }
        )
    return rows


def _transfer_lines(transfer: dict | None) -> list[str]:
    rows = transfer_rows(transfer)
    if not rows:
        return []
    first = next(iter(transfer["descriptors"].values()))
    metric = "mean class accuracy" if first["metric"] == "mean_class_accuracy" else "mAP"
    head = ["descriptor", "dimensions", f"ours ({metric}, %)", *paper.TABLE11_DATASETS]
    lines = [
        "## Table 11: the descriptors on another dataset (Appendix B)",
        "",
        f"Data: `{transfer['data']}`, {first['num_classes']} classes that no net was trained "
        f"on, {first['n_train']} training and {first['n_test']} test images. Each net is "
        f"fixed; its descriptors at Q = {transfer['scales']} (the paper's, scaled by the "
        f"crop) are {'stacked' if transfer['aggregation'] == 'stack' else 'averaged'} and "
        "L2-normalised, and a linear SVM, C chosen by cross-validation on the training "
        "images, is scored on the test images. The paper's columns: its ImageNet nets on "
        "VOC (mAP) and Caltech (mean class recall).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    names = {"pixels": "raw pixels (crop)", "D+E": "D & E"}
    for r in rows:
        se = "" if r["std_error"] is None else f" ± {r['std_error']:.1f}"
        ref = r["paper"] or {}
        cells = [f"{ref[d]:.1f}" if d in ref else "" for d in paper.TABLE11_DATASETS]
        label = names.get(r["descriptor"], r["descriptor"])
        lines.append(f"| {label} | {r['dim']} | {r['value']:.1f}{se} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _row_of(stem: str) -> str:
    """The Table 3 row (s256, s384, jitter) of a metrics file's stem."""
    return FUSION[0][1] if stem.startswith("fusion-") else stem.rsplit("-", 1)[1]


def _paper_figure(nets: list[str], row: str, setting: str, protocol: str) -> dict | None:
    """The paper's numbers for the same nets, row and protocol at the paper's own scales."""
    train = PAPER_TRAIN_SCALE[row]
    qs = test_scales(train, _PRESET.get(setting, "multi"))
    found = paper.lookup(nets, [train] * len(nets), protocol, [qs] * len(nets))
    if found is None:
        return None
    return {"table": found.table, "top1_error": found.top1, "top5_error": found.top5}


def result_rows(metrics: dict[str, dict]) -> list[dict]:
    """The rows of ``results.json``: one per (nets, training scale, protocol, test scales).

    ``paper`` holds the paper's ImageNet numbers for the row's setting at the
    paper's scale (the miniature's S = 37 is the paper's S = 256), or None.
    """
    rows = []
    for stem, entries in metrics.items():
        row = _row_of(stem)
        for setting, result in entries.items():
            ckpts = result["checkpoints"]
            nets = [c["arch"] for c in ckpts]
            scales = {tuple(c.get("train_scale") or ()) for c in ckpts}
            top1 = float(result["top1_error"])
            rows.append(
                {
                    "nets": nets,
                    "row": row,
                    "setting": setting,
                    "train_scale": list(scales.pop()) if len(scales) == 1 else None,
                    "protocol": result["protocol"],
                    "test_scales": list(result["scales"]),
                    "top1_error": round(top1, 4),
                    "top5_error": round(float(result["top5_error"]), 4),
                    "std_error": round(std_error(top1, int(result.get("n_images", 0))), 4),
                    "n_images": int(result.get("n_images", 0)),
                    "paper": _paper_figure(nets, row, setting, result["protocol"]),
                }
            )
    return rows


def _table(metrics: dict, keys: list[str], names: list[str], title: str) -> str | None:
    results = [metrics[k][n] for k in keys for n in names if n in metrics.get(k, {})]
    return render_table(results, title=title) if results else None


def training_runs(metrics: dict) -> dict:
    """The seeds and environments the evaluated nets were trained with.

    Read from the metrics files, which copy them from each ``model.pt``; one
    environment when the whole pipeline ran on one machine.
    """
    seeds, environments = set(), []
    for entries in metrics.values():
        for entry in entries.values():
            for ckpt in entry.get("checkpoints", []):
                if ckpt.get("seed") is not None:
                    seeds.add(int(ckpt["seed"]))
                env = ckpt.get("environment")
                if env and env not in environments:
                    environments.append(env)
    return {"seeds": sorted(seeds), "environments": environments}


def row_training(metrics: dict, correct: dict | None = None) -> list[dict]:
    """How each row of Table 3 was trained: epochs, rate decreases, plateau reached.

    Read from the metrics files, which copy each ``model.pt``'s ``training`` entry
    (:func:`vgg_repro.pipeline.train.training_summary`); with ``correct`` (per image,
    from :func:`load_correct`), also whether its single-scale result is at chance.
    """
    out = []
    for net, row in ROWS:  # Table 3's order
        entries = metrics.get(f"{net}-{row}")
        if not entries:
            continue
        stem = f"{net}-{row}"
        entry = entries.get("single-scale") or next(iter(entries.values()), {})
        ckpt = (entry.get("checkpoints") or [{}])[0]
        trained = ckpt.get("training") or {}
        out.append(
            {
                "row": stem,
                "epochs": trained.get("epochs"),
                "lr_decreases": trained.get("lr_decreases"),
                "plateau": trained.get("plateau"),
                "single_scale_top1": entry.get("top1_error"),
                "at_chance": _at_chance(stem, entries, correct),
            }
        )
    return out


def _at_chance(stem: str, entries: dict, correct: dict | None) -> bool | None:
    key = (stem, "single-scale")
    if not correct or key not in correct:
        return None
    return at_chance(correct[key], int(entries["single-scale"]["num_classes"]))


def geometry(q: int, crop: int, aspect: float = 4 / 3) -> dict:
    """What dense and multi-crop evaluation see at test scale ``q`` (Sec. 3.2, 4.3).

    For an image of shorter side ``q`` and the given aspect ratio (4:3, the
    commonest): the dense class score map's size (``floor(side/32) - crop/32 + 1``
    positions per side) and the number of distinct crops of the 5x5 multi-crop grid
    (positions coincide when the image is barely larger than the crop), and the
    share of the shorter side that lies under the map's positions: the five 2x2
    max-pools round down, so the last ``q mod 32`` rows reach the map only through
    the edges of the receptive fields.

    >>> geometry(256, 224)
    {'q': 256, 'score_map': [2, 4], 'distinct_crops': 25, 'dense_coverage': 1.0}
    >>> geometry(55, 32)
    {'q': 55, 'score_map': [1, 2], 'distinct_crops': 25, 'dense_coverage': 0.58}
    >>> geometry(32, 32)
    {'q': 32, 'score_map': [1, 1], 'distinct_crops': 5, 'dense_coverage': 1.0}
    """
    h, w = q, round(q * aspect)
    k = crop // 32
    score_map = [max(0, h // 32 - k + 1), max(0, w // 32 - k + 1)]
    return {
        "q": q,
        "score_map": score_map,
        "distinct_crops": len(set(crop_grid(h, w, crop))),
        "dense_coverage": round(32 * (h // 32) / h, 2),
    }


def stated_deviations(profile: dict) -> dict[str, dict]:
    """The profile's deviations from the paper's recipe, each with the value it trains with.

    ``profile["deviations"]`` says why (``paper``, ``why``); the value is the one in
    ``train.overrides``, which the train stages pass to ``vgg-repro fit``.

    Raises:
        ConfigError: a deviation that no override sets, or one without its reason.
    """
    overrides = (profile.get("train") or {}).get("overrides") or {}
    out = {}
    for key, entry in (profile.get("deviations") or {}).items():
        if key not in overrides:
            raise ConfigError(
                f"params.yaml: deviations.{key} explains a setting that train.overrides does "
                f"not set; add {key} to train.overrides or remove the deviation"
            )
        if not isinstance(entry, dict) or not {"paper", "why"} <= set(entry):
            raise ConfigError(f"params.yaml: deviations.{key} needs 'paper' and 'why'")
        out[key] = {"value": overrides[key], "paper": entry["paper"], "why": entry["why"]}
    return out


def _geometry_rows(metrics: dict) -> list[dict]:
    crops = {
        int(c["crop_size"])
        for entries in metrics.values()
        for e in entries.values()
        for c in e.get("checkpoints", [])
        if c.get("crop_size")
    }
    scales = sorted(
        {
            int(q)
            for entries in metrics.values()
            for e in entries.values()
            for q in e.get("scales", [])
        }
    )
    return [geometry(q, crop) for crop in sorted(crops) for q in scales]


def _training_lines(training: list[dict], deviations: dict) -> list[str]:
    lines = ["## Training", ""]
    lines += ["| row | epochs | rate decreases | stopped by | single-scale top-1 % |"]
    lines += ["|---|---|---|---|---|"]
    for t in training:
        stop = {True: "plateau", False: "epoch budget"}.get(t["plateau"], "not recorded")
        top1 = t["single_scale_top1"]
        top1 = "" if top1 is None else f"{top1:.1f}"
        if t.get("at_chance"):
            top1 += " (at chance: a failed run, not a result)"
        lines.append(f"| {t['row']} | {t['epochs']} | {t['lr_decreases']} | {stop} | {top1} |")
    lines += [
        "",
        "A row stopped by its plateau ran the paper's schedule to its end (Sec. 3.1: the "
        "rate divided by 10 when validation accuracy stopped improving); a row stopped by "
        "its epoch budget was still improving or had not run its last decrease.",
        "",
    ]
    if deviations:
        lines += ["Deviations from the paper's recipe, each forced by a measurement:", ""]
        lines += ["| setting | here | paper | measured |", "|---|---|---|---|"]
        for key, d in deviations.items():
            lines.append(f"| `{key}` | {d.get('value')} | {d.get('paper')} | {d.get('why')} |")
        lines.append("")
    return lines


def _geometry_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## Test geometry", ""]
    lines += [
        "| Q | dense score map (4:3 image) | share of the shorter side under it "
        "| distinct multi-crop crops (of 25) |"
    ]
    lines += ["|---|---|---|---|"]
    for g in rows:
        h, w = g["score_map"]
        seen = f"{100 * g['dense_coverage']:.0f}%"
        lines.append(f"| {g['q']} | {h}x{w} | {seen} | {g['distinct_crops']} |")
    one = [g["q"] for g in rows if g["score_map"] == [1, 1]]
    few = [g for g in rows if g["distinct_crops"] < 25]
    text = []
    if one:
        text.append(
            f"At Q = {', '.join(map(str, one))} the dense class score map has one position: "
            "dense evaluation is one view of the whole image, so Table 5's comparison of "
            "dense with multi-crop evaluation weighs that view against the distinct crops, "
            "not the boundary effects that Sec. 4.3 discusses."
        )
    if len(one) < len(rows):
        text.append(
            "At the larger scales it pools a map of several positions, as in the paper "
            "(7x7 FC6 on 256-pixel images gives 2x4 positions at 4:3)."
        )
    partial = [g for g in rows if g["dense_coverage"] < 1]
    if partial:
        text.append(
            "The paper's test scales (256, 384, 512) are multiples of 32, so its score map "
            "lies over the whole image; the miniature's scaled ones mostly are not, and the "
            "max-pools' rounding leaves the last rows and columns outside the map's "
            f"positions (down to {100 * min(g['dense_coverage'] for g in partial):.0f}% of "
            "the shorter side under it), reached only by the edges of the receptive fields, "
            "while multi-crop evaluation spreads its crops over the whole image. Dense "
            "results at those scales, and the claims that rest on them, carry that handicap."
        )
    for g in few:
        text.append(
            f"At Q = {g['q']} the image is barely larger than the crop: the 5x5 grid has only "
            f"{g['distinct_crops']} distinct crops."
        )
    lines += ["", " ".join(text), ""]
    return lines


def _environment_lines(runs: dict) -> list[str]:
    seeds = ", ".join(str(s) for s in runs["seeds"]) or "not recorded"
    lines = ["## Environment", "", f"Training seed: {seeds}.", ""]
    for env in runs["environments"]:
        lines += [f"Trained on {env.get('system')} {env.get('machine')} with:", ""]
        lines += ["| library | version |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(env.get("versions", {}).items())]
        cpu = env.get("cpu")
        if cpu:  # recorded since #17: what decides the CPU's rounding
            lines += [
                "",
                f"CPU: {cpu.get('model')}; kernels: {cpu.get('capability')}, BLAS "
                f"{cpu.get('blas')}, oneDNN {cpu.get('onednn')}; {cpu.get('threads')} "
                "threads. Nets trained elsewhere differ in their last bits (see the "
                "documentation's page on reproducing), and so may their error rates.",
            ]
        lines.append("")
    return lines


def render_markdown(
    profile: str,
    info: dict,
    metrics: dict,
    claims: list[dict],
    deviations: dict | None = None,
    correct: dict | None = None,
    transfer: dict | None = None,
) -> str:
    """``report.md``: the tables in the paper's layout and the claims check."""
    rows = [k for k in metrics if not k.startswith("fusion-")]
    jitter = [k for k in rows if k in ("D-jitter", "E-jitter")]
    evaluated = [e.get("n_images") for entries in metrics.values() for e in entries.values()]
    n_val = max((n for n in evaluated if n), default=(info.get("images") or {}).get("val"))
    lines = [
        f"# Results of the `{profile}` profile",
        "",
        f"Data: `{info.get('source') or info.get('root')}`, {len(info.get('classes') or [])} "
        f"classes, {n_val} validation images evaluated (md5 `{info.get('md5')}`). Top-1 and top-5 "
        "error in percent; the paper's numbers (ImageNet) are shown only for runs on "
        "1000 classes at the paper's width.",
        "",
    ]
    for text in (
        _table(metrics, rows, ["single-scale"], "Table 3: one test scale (dense)"),
        _table(metrics, rows, ["multi-scale"], "Table 4: three test scales (dense)"),
        _table(
            metrics,
            jitter,
            ["multi-scale", "multi-crop", "dense+multi-crop"],
            "Table 5: dense, multi-crop, both (jittered S)",
        ),
        _table(
            metrics,
            ["fusion-D+E"],
            ["dense", "multi-crop", "dense+multi-crop"],
            "Table 6: fusion of D and E (jittered S)",
        ),
    ):
        if text:
            lines += [text, ""]
    lines += _transfer_lines(transfer)
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    lines += [
        "## The paper's claims",
        "",
        f"Of {len(claims)} claims, {counts['agrees']} agree with the paper, "
        f"{counts['disagrees']} disagree and {counts['inconclusive']} are inconclusive.",
        "",
        "| claim | verdict | ours (top-1 %) | paper (top-1 %) |",
        "|---|---|---|---|",
    ]
    for c in claims:
        ours, ref = format_evidence(c["ours"]), format_evidence(c["paper"])
        lines.append(f"| {c['id']} | {c['verdict']} | {ours} | {ref} |")
    lines += [
        "",
        "Each error is given ± its binomial standard error. A difference (B − A, in points "
        "of top-1 error) is given with its 95% paired bootstrap interval over the "
        "validation images and the p-value of the exact McNemar test (of a paired "
        "bootstrap for a slope or a mean gain). A comparison agrees or disagrees when it is "
        "significant at 0.05 and its interval excludes 0, and is inconclusive otherwise; a "
        "claim resting on several comparisons agrees when all agree and disagrees when any "
        "disagrees.",
        "",
    ]
    by_id = {c.id: c for c in CLAIMS}
    for c in claims:
        claim = by_id[c["id"]]
        lines.append(f"- **{claim.id}**: {claim.statement} Rule: {claim.rule}")
    if profile != "paper":
        lines += [
            "",
            f"The `{profile}` profile is a miniature, not ImageNet: narrow nets, "
            "32-pixel crops, synthetic shapes and minutes of CPU training. Agreement "
            "or disagreement here says how the paper's recipe behaves at this scale, "
            "not whether the paper is right.",
        ]
    lines += [
        "",
        "## Figures",
        "",
        "![Top-1 error against depth, beside the paper's](figures/depth.svg)",
        "",
        "![Validation top-1 error per epoch, every row of Table 3](figures/curves.svg)",
        "",
        "![Dense, multi-crop and both for the jittered D and E](figures/protocols.svg)",
    ]
    lines += ["", *_training_lines(row_training(metrics, correct), deviations or {})]
    lines += _geometry_lines(_geometry_rows(metrics))
    lines += _environment_lines(training_runs(metrics))
    return "\n".join(lines).rstrip("\n") + "\n"


def depth_rows(metrics: dict) -> list[dict]:
    """Table 3's S=256 single-scale errors against the number of weight layers."""
    out = []
    for net in ("A", "A-LRN", "B", "C", "D", "E"):
        entry = metrics.get(f"{net}-s256", {}).get("single-scale")
        if entry:
            out.append(
                {
                    "net": net,
                    "weight_layers": models.num_weight_layers(net),
                    "top1_error": round(entry["top1_error"], 4),
                    "top5_error": round(entry["top5_error"], 4),
                }
            )
    return sorted(out, key=lambda r: (r["weight_layers"], r["net"]))


def write_report(profile: str, settings: dict | None = None) -> dict:
    """Write ``reports/results.json``, ``reports/report.md`` and ``reports/depth.csv``."""
    info = json.loads(DATA_INFO.read_text())
    metrics = load_metrics()
    correct = load_correct(metrics)
    transfer = load_transfer()
    claims = check_claims(metrics, correct, transfer)
    first = next(iter(metrics.values()), {})
    num_classes = next(iter(first.values()), {}).get("num_classes", len(info.get("classes", [])))
    deviations = stated_deviations(settings or {})
    results = {
        "profile": profile,
        "dataset": Path(info.get("source") or info.get("root", "")).name,
        "num_classes": int(num_classes),
        "rows": result_rows(metrics),
        "claims": claims,
        "training": training_runs(metrics),
        "rows_trained": row_training(metrics, correct),
        "deviations": deviations,
        "geometry": _geometry_rows(metrics),
        "transfer": transfer_rows(transfer),
    }
    write_json(REPORTS / "results.json", results)
    md = REPORTS / "report.md"
    write_text(md, render_markdown(profile, info, metrics, claims, deviations, correct, transfer))
    depth = depth_rows(metrics)
    csv = ["net,weight_layers,top1_error,top5_error"]
    csv += [f"{r['net']},{r['weight_layers']},{r['top1_error']},{r['top5_error']}" for r in depth]
    write_text(REPORTS / "depth.csv", "\n".join(csv) + "\n")
    write_summary(metrics, claims, transfer)
    for c in claims:
        print(f"claim {c['id']}: {c['verdict']} ({format_evidence(c['ours'])})")
    print(ending(claims, md))
    return results


# The compact metrics that `dvc metrics show`, `dvc metrics diff` and `dvc exp show`
# read (dvc.yaml declares only this folder as metrics): one small file per row of
# Table 3, per transfer descriptor and per claim, with the same few keys each, so that
# `dvc metrics show` is a table of about 30 rows and 4 columns.
SUMMARY = METRICS / "summary"
VERDICT_NUMBER = {"agrees": 1, "inconclusive": 0, "disagrees": -1}


def write_summary(metrics: dict, claims: list[dict], transfer: dict | None = None) -> None:
    """``metrics/summary/*.json``: top-1 and top-5 error (percent, one decimal) of each
    row's single-scale result (the fusion's multi-crop & dense one) and of each transfer
    descriptor (top-1: the share of test images wrong), and each claim's verdict as a
    number (1 agrees, 0 inconclusive, -1 disagrees)."""
    import shutil

    files: dict[str, dict] = {}
    for stem, entries in metrics.items():
        entry = entries.get("single-scale") or entries.get("dense+multi-crop")
        if entry:
            files[stem] = {k: round(float(entry[f"{k}_error"]), 1) for k in ("top1", "top5")}
    for row in transfer_rows(transfer):
        files[f"transfer-{row['descriptor']}"] = {"top1": round(100.0 - row["value"], 1)}
    for c in claims:
        files[f"claim-{c['id']}"] = {"verdict": VERDICT_NUMBER[c["verdict"]]}
    tmp = SUMMARY.with_name(f".{SUMMARY.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, values in files.items():
        write_json(tmp / f"{name}.json", values)
    shutil.rmtree(SUMMARY, ignore_errors=True)  # a stage output: DVC deletes it too
    os.replace(tmp, SUMMARY)


def ending(claims: list[dict], report: Path) -> str:
    """The report stage's last lines: the verdicts in one line, where the report is,
    and how to compare it with the committed reference run.

    >>> print(ending([{"id": "depth", "verdict": "agrees"}], Path("reports/report.md")))
    Claims: 1 agree, 0 disagree, 0 inconclusive (agree: depth).
    Report: reports/report.md
    Compare with the committed reference run: git diff reports/ and dvc metrics diff
    """
    names = {v: [c["id"] for c in claims if c["verdict"] == v] for v in VERDICTS}
    which = "; ".join(
        f"{v[:-1] if v.endswith('s') else v}: {', '.join(n)}" for v, n in names.items() if n
    )
    return "\n".join(
        [
            f"Claims: {len(names['agrees'])} agree, {len(names['disagrees'])} disagree, "
            f"{len(names['inconclusive'])} inconclusive ({which}).",
            f"Report: {report}",
            "Compare with the committed reference run: git diff reports/ and dvc metrics diff",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.report``."""
    argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.report").parse_args(argv)
    name, settings = load_profile()
    write_report(name, settings)
    return 0


if __name__ == "__main__":
    run_stage("report", main)
