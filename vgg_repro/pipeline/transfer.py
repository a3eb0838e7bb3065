"""Stage ``transfer``: Appendix B's descriptors on a dataset that no net was trained on.

    python -m vgg_repro.pipeline.transfer

The trained nets, fixed, describe the images of ``profiles.<profile>.transfer.data``
(:func:`vgg_repro.evaluation.descriptors.describe_folder`: FC7 activations, dense,
flip, the scales stacked or averaged, L2), and a linear SVM trained on its ``train``
split is scored on its ``test`` split (:func:`vgg_repro.evaluation.transfer.transfer`):
a miniature Table 11. The descriptors: A, B (S = 256), C, D, E (jittered, the nets
Appendix B uses), D and E concatenated, and a non-learned baseline, the raw pixels of
the centre crop. Writes ``metrics/transfer/table11.json`` and, under
``posteriors/transfer``, whether each test image was classified right, per
descriptor, for the report's paired tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from vgg_repro.data.images import load_image
from vgg_repro.data.transforms import scaled_size
from vgg_repro.errors import ConfigError, DataError
from vgg_repro.evaluation.descriptors import describe_folder, load_descriptor_net, pixel_descriptor
from vgg_repro.evaluation.runner import find_images
from vgg_repro.evaluation.scales import PAPER_CROP
from vgg_repro.evaluation.transfer import DEFAULT_CS, transfer
from vgg_repro.pipeline.check_data import verify_pinned
from vgg_repro.pipeline.common import (
    METRICS,
    POSTERIORS,
    load_profile,
    model_path,
    run_stage,
    subset_view,
    write_json,
)

__all__ = ["DESCRIPTORS", "TABLE11_PATH", "main", "pixel_folder", "run_transfer"]

# The nets whose descriptors Table 11's miniature compares: each net once, the
# jittered row where it exists (Appendix B uses the jittered D and E).
DESCRIPTORS: dict[str, tuple[str, str]] = {
    "A": ("A", "s256"),
    "B": ("B", "s256"),
    "C": ("C", "jitter"),
    "D": ("D", "jitter"),
    "E": ("E", "jitter"),
}
COMBINED = ("D+E", ("D", "E"))  # Table 11's "Net-D & Net-E": the two concatenated
PIXELS = "pixels"
TABLE11_PATH = METRICS / "transfer" / "table11.json"
CORRECT_DIR = POSTERIORS / "transfer"


def pixel_folder(root: Path, crop_size: int) -> dict:
    """The raw-pixel baseline of every image of ``root/CLASS/IMAGE``, as describe_folder's."""
    classes, samples = find_images(root)
    rows = [pixel_descriptor(load_image(path), crop_size) for path, _ in samples]
    return {
        "features": np.stack(rows).astype(np.float32),
        "files": [Path(p).relative_to(root).as_posix() for p, _ in samples],
        "labels": [label for _, label in samples],
        "classes": classes,
    }


def _settings(profile: dict) -> dict:
    settings = profile.get("transfer")
    if not isinstance(settings, dict) or not settings.get("data"):
        raise ConfigError(
            "params.yaml: the profile has no transfer.data (the folder of the Appendix B "
            "dataset, with train/ and test/ class folders); add it as in the miniature profile"
        )
    return settings


def run_transfer(profile: dict) -> dict:
    """Describe, classify and score; write the metrics and the per-image results."""
    settings = _settings(profile)
    root = Path(settings["data"])
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataError(
                f"{root} has no {split}/ folder: the transfer data is ROOT/train/CLASS/IMAGE "
                "and ROOT/test/CLASS/IMAGE (`vgg-repro data split` makes it from one folder)"
            )
    md5 = verify_pinned(root)[0] if settings.get("pinned") else None
    paper_scales = [int(q) for q in settings.get("scales") or (256, 384, 512)]
    aggregation = settings.get("aggregation", "stack")
    cs = [float(c) for c in settings.get("C") or DEFAULT_CS]
    folds = int(settings.get("folds", 5))
    batch_size = int(settings.get("batch_size", 32))
    device = settings.get("device", "cpu")
    described: dict[str, dict[str, dict]] = {}
    sources: dict[str, str] = {}
    crops = []
    with subset_view(root, settings.get("limit_per_class"), ("train", "test")) as view:
        for name, (net_name, row) in DESCRIPTORS.items():
            net = load_descriptor_net(model_path(net_name, row))
            crop = net.model.crop_size
            crops.append(crop)
            scales = [scaled_size(q, crop, PAPER_CROP) for q in paper_scales]
            sources[name] = net.source
            described[name] = {
                split: describe_folder(
                    [net],
                    view / split,
                    scales,
                    aggregation=aggregation,
                    batch_size=batch_size,
                    device=device,
                )  # fmt: skip
                for split in ("train", "test")
            }
            print(f"descriptors of {name}: {described[name]['test']['features'].shape[1]} "
                  f"dimensions at Q = {scales}")  # fmt: skip
        combined, members = COMBINED
        described[combined] = {
            split: described[members[0]][split]
            | {"features": np.concatenate([described[m][split]["features"] for m in members], 1)}
            for split in ("train", "test")
        }
        # The baseline sees what a net's training crop sees: the image at the crop size.
        described[PIXELS] = {s: pixel_folder(view / s, crops[0]) for s in ("train", "test")}
    # The cross-validation's SVM fits run one per core; the result does not depend on it.
    jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    shutil.rmtree(CORRECT_DIR, ignore_errors=True)  # a stage output, which DVC deletes too
    CORRECT_DIR.mkdir(parents=True)
    table: dict[str, dict] = {}
    files = None
    for name, splits in described.items():
        result = transfer(splits["train"], splits["test"], cs=cs, folds=folds, jobs=jobs)
        correct = result.pop("correct", None)
        test_files = result.pop("test_files", None)
        result.pop("per_class", None)
        result["nets"] = [sources[m] for m in (COMBINED[1] if name == COMBINED[0] else [name])
                          if m in sources]  # fmt: skip
        table[name] = result
        if correct is not None:
            np.save(CORRECT_DIR / f"{name}.npy", np.asarray(correct, dtype=bool))
            files = test_files
        print(f"{name}: {result['metric']} {result['value']:.1f}% (C = {result['C']:g})")
    if files is not None:
        (CORRECT_DIR / "files.txt").write_text("\n".join(files) + "\n")
    from importlib import metadata

    out = {
        "data": str(root),
        "md5": md5,
        # The classifier's library: its version can change the numbers too.
        "scikit-learn": metadata.version("scikit-learn"),
        "scales": paper_scales,
        "aggregation": aggregation,
        "descriptors": table,
    }
    write_json(TABLE11_PATH, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.transfer``."""
    argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.transfer").parse_args(argv)
    _, profile = load_profile()
    run_transfer(profile)
    return 0


if __name__ == "__main__":
    run_stage("transfer", main)
