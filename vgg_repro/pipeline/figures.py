"""Stage ``figures``: the run's results as pictures, for the report, the docs and ``dvc plots``.

    python -m vgg_repro.pipeline.figures

Writes three SVG files under ``reports/figures/`` with matplotlib:

- ``depth.svg``: top-1 error against the number of weight layers (Table 3, S = 256, one
  test scale), ours beside the paper's;
- ``curves.svg``: the validation top-1 error of every row of Table 3, epoch by epoch
  (from each run's DVCLive log);
- ``protocols.svg``: dense, multi-crop and both for the jittered D and E (Table 5).

``dvc plots show`` lists them as images: its page needs no JavaScript from the network,
so it renders offline. The SVG files are byte-for-byte the same for the same numbers
(no date, fixed element ids).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from vgg_repro import models, paper
from vgg_repro.files import atomic_write
from vgg_repro.pipeline.common import METRICS, REPORTS, ROWS, model_dir, row_key, run_stage

__all__ = ["FIGURES", "curves", "draw_curves", "draw_depth", "draw_protocols", "main"]

FIGURES = REPORTS / "figures"
_DEPTH_NETS = ("A", "A-LRN", "B", "C", "D", "E")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    matplotlib.rcParams["svg.hashsalt"] = "vgg-repro"  # the same ids in every run
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write the figure atomically, with no date in it."""
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return path


def draw_depth(errors: dict[str, float], path: Path) -> Path:
    """Top-1 error against weight layers (Table 3, S = 256): ours and the paper's."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    # The line joins A, B, D and E (the depth claim's nets); A-LRN and C, which differ
    # from them in more than depth, are marked apart.
    line = [n for n in ("A", "B", "D", "E") if n in errors]
    apart = [n for n in ("A-LRN", "C") if n in errors]
    for nets, style, ref_style, label in ((line, "o-", "s--", True), (apart, "o", "s", False)):
        layers = [models.num_weight_layers(n) for n in nets]
        ax.plot(layers, [errors[n] for n in nets], style, color="C0",
                label="this run" if label else None)  # fmt: skip
        theirs = [paper.TABLE3[(n, paper.S256)][0] for n in nets]
        ax.plot(layers, theirs, ref_style, color="C1", label="paper (ImageNet)" if label else None)
        for n, x, y in zip(nets, layers, [errors[n] for n in nets], strict=True):
            ax.annotate(n, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("weight layers")
    ax.set_ylabel("top-1 error (%)")
    ax.set_title("Table 3, S = 256, one test scale")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return path


def curves(run_dir: Path) -> list[float]:
    """A run's validation top-1 error per epoch, from its DVCLive log (empty if none)."""
    tsv = run_dir / "dvclive" / "plots" / "metrics" / "val" / "top1_error.tsv"
    if not tsv.is_file():
        return []
    with tsv.open(newline="") as f:
        return [float(r["top1_error"]) for r in csv.DictReader(f, delimiter="\t")]


def draw_curves(per_row: dict[str, list[float]], path: Path) -> Path:
    """Validation top-1 error per epoch, one panel per training scale."""
    plt = _pyplot()
    panels = ("s256", "s384", "jitter")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for ax, row in zip(axes, panels, strict=True):
        for key, values in per_row.items():
            if key.endswith(f"-{row}") and values:
                ax.plot(range(1, len(values) + 1), values, label=key.rsplit("-", 1)[0])
        ax.set_title({"s256": "S = 256", "s384": "S = 384", "jitter": "S in [256, 512]"}[row])
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("validation top-1 error (%)")
    _save(fig, path)
    plt.close(fig)
    return path


def draw_protocols(errors: dict[str, dict[str, float]], path: Path) -> Path:
    """Table 5: dense, multi-crop and both, for the jittered D and E: ours and the paper's."""
    plt = _pyplot()
    protocols = ("dense", "multi-crop", "dense+multi-crop")
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    nets = list(errors)
    width = 0.8 / len(protocols)
    for i, protocol in enumerate(protocols):
        xs = [j + (i - 1) * width for j in range(len(nets))]
        ax.bar(xs, [errors[n][protocol] for n in nets], width, label=protocol)
        ref = [paper.TABLE5[(n, protocol)][0] for n in nets]
        ax.plot(xs, ref, "k_", markersize=14, label="paper" if i == 0 else None)
    ax.set_xticks(range(len(nets)), [f"{n} (jittered)" for n in nets])
    ax.set_ylabel("top-1 error (%)")
    ax.set_title("Table 5, three test scales")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)
    plt.close(fig)
    return path


def draw_all(metrics_dir: Path = METRICS, out: Path = FIGURES) -> list[Path]:
    """The three figures of the run whose metrics are in ``metrics_dir``."""
    metrics = {p.stem: json.loads(p.read_text()) for p in sorted(metrics_dir.glob("*.json"))}
    depth = {
        n: metrics[f"{n}-s256"]["single-scale"]["top1_error"]
        for n in _DEPTH_NETS
        if f"{n}-s256" in metrics
    }
    per_row = {row_key(*r): curves(model_dir(*r) / "run") for r in ROWS}
    names = {"dense": "multi-scale", "multi-crop": "multi-crop"}
    names["dense+multi-crop"] = "dense+multi-crop"
    table5 = {
        n: {p: metrics[f"{n}-jitter"][s]["top1_error"] for p, s in names.items()}
        for n in ("D", "E")
        if all(s in metrics.get(f"{n}-jitter", {}) for s in names.values())
    }
    return [
        draw_depth(depth, out / "depth.svg"),
        draw_curves(per_row, out / "curves.svg"),
        draw_protocols(table5, out / "protocols.svg"),
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.figures``."""
    argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.figures").parse_args(argv)
    for path in draw_all():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_stage("figures", main)
