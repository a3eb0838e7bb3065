"""Stage ``fuse``: the D+E fusion of Table 6 (Sec. 4.4), from saved posteriors.

    python -m vgg_repro.pipeline.fuse

The soft-max posteriors of the jittered D and E, saved by their ``evaluate``
stages, are averaged (:func:`vgg_repro.evaluation.average_posteriors`, the rule of
every fusion in the package) for the three protocols of Table 6: the nets do not
run again. Writes ``metrics/fusion-D+E.json`` and the fused posteriors under
``posteriors/fusion-D+E``, which the report's paired tests read.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from vgg_repro.errors import VGGReproError
from vgg_repro.evaluation.protocols import average_posteriors, topk_error
from vgg_repro.pipeline.common import (
    FUSION,
    METRICS,
    POSTERIORS,
    metrics_path,
    posteriors_dir,
    run_stage,
    write_json,
)

__all__ = ["FUSED_PROTOCOLS", "fuse", "fuse_posteriors", "main"]

# Table 6's protocols, each at the nets' multi-scale setting -> the evaluate stage's names.
FUSED_PROTOCOLS = {
    "dense": "multi-scale",
    "multi-crop": "multi-crop",
    "dense+multi-crop": "dense+multi-crop",
}


def fuse_posteriors(members: list[tuple[dict, Path]], out_dir: Path | None = None) -> dict:
    """The fusion of Sec. 4.4 (Table 6) from saved evaluations: posteriors averaged.

    Args:
        members: per net, its evaluate stage's metrics (``metrics/NET-ROW.json``)
            and its posteriors folder (``posteriors/NET-ROW``).

        out_dir: if given, the fused posteriors are written there as ``PROTOCOL.npy``,
            with the members' ``labels.npy`` and ``files.txt``, for the report's paired
            tests.

    Returns:
        Per protocol of :data:`FUSED_PROTOCOLS`, the metrics in the evaluate
        stage's layout: the same numbers as ``evaluate_protocols`` on all the nets
        at once, without running them again.

    Raises:
        VGGReproError: the nets were evaluated on different images, or a file is
            missing (run their evaluate stages first).
    """
    labels, files = None, None
    for _, folder in members:
        try:
            own = np.load(folder / "labels.npy"), (folder / "files.txt").read_text()
        except OSError as err:
            raise VGGReproError(f"cannot read the posteriors in {folder}: {err}") from None
        if labels is None:
            labels, files = own
        elif not (np.array_equal(own[0], labels) and own[1] == files):
            raise VGGReproError(
                f"{members[0][1]} and {folder} hold posteriors of different images: "
                "evaluate every fused net on the same data (`dvc repro`)"
            )
    out = {}
    for fused, name in FUSED_PROTOCOLS.items():
        try:
            each = [np.load(folder / f"{name}.npy") for _, folder in members]
            entries = [metrics[name] for metrics, _ in members]
        except (OSError, KeyError) as err:
            raise VGGReproError(
                f"no {name} evaluation to fuse ({err}): the fused nets need the multi-crop "
                "protocols of Table 5; run their evaluate stages first (`dvc repro`)"
            ) from None
        posteriors = average_posteriors([torch.from_numpy(p) for p in each])
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            np.save(out_dir / f"{fused}.npy", posteriors.numpy())
        target = torch.from_numpy(labels)
        out[fused] = {
            "top1_error": topk_error(posteriors, target, 1),
            "top5_error": topk_error(posteriors, target, 5),
            "protocol": entries[0]["protocol"],
            "scales": sorted({q for e in entries for q in e["scales"]}),
            "n_images": len(labels),
            "num_classes": int(posteriors.shape[1]),
            "checkpoints": [c for e in entries for c in e["checkpoints"]],
        }
    if out_dir is not None:
        np.save(out_dir / "labels.npy", labels)
        (out_dir / "files.txt").write_text(files)
    return out


def fuse() -> Path:
    """Fuse D and E (jittered) for the three protocols of Table 6; write the metrics."""
    members = [(json.loads(metrics_path(*key).read_text()), posteriors_dir(*key)) for key in FUSION]
    folder = POSTERIORS / "fusion-D+E"
    shutil.rmtree(folder, ignore_errors=True)  # a stage output, which DVC deletes too
    out = fuse_posteriors(members, folder)
    for name, result in out.items():
        print(f"{name}: top-1 {result['top1_error']:.2f}%, top-5 {result['top5_error']:.2f}%")
    path = METRICS / "fusion-D+E.json"
    write_json(path, out)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.fuse``."""
    argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.fuse").parse_args(argv)
    fuse()
    return 0


if __name__ == "__main__":
    run_stage("fuse", main)
