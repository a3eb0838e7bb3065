"""Stage ``evaluate``: the test protocols of Sec. 3.2 for one row of Table 3.

    python -m vgg_repro.pipeline.evaluate D jitter

Dense evaluation at one test scale (Table 3) and three (Table 4) for every row;
the jittered D and E also multi-crop and multi-crop & dense (Table 5). All of a
row's protocols come from one pass over the validation images
(:func:`vgg_repro.evaluation.evaluate_protocols`). Writes ``metrics/NET-ROW.json``
and, under ``posteriors/NET-ROW``, each protocol's posteriors (``NAME.npy``, with
``labels.npy`` and ``files.txt``), which the ``fuse`` stage averages.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from vgg_repro.errors import VGGReproError
from vgg_repro.evaluation.networks import load_network
from vgg_repro.evaluation.runner import evaluate_protocols
from vgg_repro.pipeline.common import (
    MULTI_CROP_ROWS,
    load_profile,
    metrics_path,
    model_path,
    parse_row,
    posteriors_dir,
    run_stage,
    subset_view,
    write_json,
)

__all__ = ["evaluate", "main", "row_protocols"]


def row_protocols(net: str, row: str) -> dict[str, tuple[str, str]]:
    """Name -> (protocol, scales preset) for a row: Tables 3 and 4, plus 5 for D, E jittered.

    >>> list(row_protocols("D", "jitter"))
    ['single-scale', 'multi-scale', 'multi-crop', 'dense+multi-crop']
    """
    out = {"single-scale": ("dense", "single"), "multi-scale": ("dense", "multi")}
    if (net, row) in MULTI_CROP_ROWS:
        out["multi-crop"] = ("multi-crop", "multi")
        out["dense+multi-crop"] = ("dense+multi-crop", "multi")
    return out


def _slim(result: dict, trained: dict[str, dict]) -> dict:
    """The parts of a result that the report and `dvc metrics show` use.

    ``trained``: checkpoint path -> its training seed and environment.
    """
    keep = ("top1_error", "top5_error", "protocol", "scales", "n_images", "num_classes")
    slim = {k: result[k] for k in keep if k in result}
    slim["checkpoints"] = [
        {k: c.get(k) for k in ("path", "arch", "width", "crop_size", "train_scale", "test_scales")}
        | trained.get(c.get("path"), {})
        for c in result.get("checkpoints", [])
    ]
    for k in ("top1_error", "top5_error"):
        if not math.isfinite(float(slim[k])):
            raise VGGReproError(f"evaluation gave a non-finite {k}: {slim[k]}")
    return slim


def evaluate(net: str, row: str, profile: dict) -> Path:
    """Evaluate one row with its protocols; write its metrics and posteriors."""
    model = load_network(model_path(net, row))
    trained = {model.source: {k: model.meta.get(k) for k in ("seed", "environment", "training")}}
    settings = profile.get("evaluate") or {}
    folder = posteriors_dir(net, row)
    shutil.rmtree(folder, ignore_errors=True)  # a stage output, which DVC deletes too
    folder.mkdir(parents=True)
    with subset_view(Path(profile["data"]), settings.get("limit_per_class"), ("val",)) as root:
        results = evaluate_protocols(
            [model],
            root / "val",
            row_protocols(net, row),
            batch_size=int(settings.get("batch_size", 16)),
            device=settings.get("device", "cpu"),
            workers=int(settings.get("workers") or 0),
            progress=False,
            keep_posteriors=True,
        )
    out = {}
    for name, result in results.items():
        out[name] = _slim(result, trained)
        np.save(folder / f"{name}.npy", result["posteriors"].numpy())
        print(f"{name}: top-1 {result['top1_error']:.2f}%, top-5 {result['top5_error']:.2f}%")
    # The same images, in the same order, for every protocol.
    np.save(folder / "labels.npy", result["labels"].numpy())
    (folder / "files.txt").write_text("\n".join(result["files"]) + "\n")
    write_json(metrics_path(net, row), out)
    return metrics_path(net, row)


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.evaluate NET ROW``."""
    net, row = parse_row("python -m vgg_repro.pipeline.evaluate", argv)
    _, profile = load_profile()
    evaluate(net, row, profile)
    return 0


if __name__ == "__main__":
    run_stage("evaluate", main)
