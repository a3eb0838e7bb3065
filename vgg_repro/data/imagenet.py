"""ILSVRC-2012's official validation set, one flat folder plus a label file, sorted
into the ``ROOT/val/CLASS/IMAGE`` layout that training and evaluation read
(``vgg-repro data convert-val``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vgg_repro.data.folders import IMAGE_EXTENSIONS
from vgg_repro.errors import ConfigError, DataError


def read_val_labels(labels: str | os.PathLike, synsets: str | os.PathLike | None = None) -> dict:
    """Map validation file names to class names from a label file.

    Accepted formats: ``FILE CLASS`` lines (space or comma separated); Kaggle's
    ``LOC_val_solution.csv`` (``ImageId,PredictionString``); or one integer per
    line (the devkit's ``ILSVRC2012_validation_ground_truth.txt``, line i for the
    i-th file in sorted order) with ``synsets`` listing class k on line k (1-based).
    ``FILE INTEGER`` lines (Caffe's ``val.txt``, 0-based) also need ``synsets``.
    """
    lines = [ln.strip() for ln in Path(labels).read_text().splitlines() if ln.strip()]
    names = [ln.strip() for ln in Path(synsets).read_text().splitlines()] if synsets else None

    def name_of(token: str, base: int) -> str:
        if not token.isdigit():
            return token
        if names is None:
            raise ConfigError(
                f"{labels} gives integer labels: pass --synsets FILE (one class per line)"
            )
        return names[int(token) - base].split()[0]

    if lines[0].lower().startswith("imageid,"):  # Kaggle LOC_val_solution.csv
        return {ln.split(",")[0]: ln.split(",")[1].split()[0] for ln in lines[1:]}
    if all(ln.isdigit() for ln in lines):  # devkit ground truth, sorted file order
        return {str(i): name_of(ln, 1) for i, ln in enumerate(lines)}
    pairs = [ln.replace(",", " ").split()[:2] for ln in lines]
    return {Path(f).stem: name_of(c, 0) for f, c in pairs}


def convert_val(
    flat_dir: str | os.PathLike,
    labels: str | os.PathLike,
    output: str | os.PathLike,
    synsets: str | os.PathLike | None = None,
    mode: str = "symlink",
) -> int:
    """Sort a flat validation folder into ``output/CLASS/FILE``; returns the file count."""
    flat_dir, output = Path(flat_dir), Path(output)
    files = sorted(p for p in flat_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    mapping = read_val_labels(labels, synsets)
    for i, src in enumerate(files):
        cls = mapping.get(src.stem, mapping.get(str(i)))
        if cls is None:
            raise DataError(f"{labels} has no label for {src.name}")
        dst = output / cls / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if mode == "symlink":
            dst.symlink_to(src.resolve())
        elif mode == "copy":
            shutil.copy2(src, dst)
        else:
            shutil.move(src, dst)
    return len(files)
