"""The ImageNet folder layout: which files are images, which folders are classes.

Without PyTorch, so that the pipeline's data check starts in a fraction of a
second; :mod:`vgg_repro.data.images` builds its datasets on these functions.
"""

from __future__ import annotations

import os
from pathlib import Path

from vgg_repro.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def class_folders(split_dir: Path) -> list[str]:
    """Sorted names of the class folders of one split (hidden folders ignored)."""
    if not split_dir.is_dir():
        raise DataError(
            f"{split_dir} is not a folder; expected ROOT/train/CLASS/* and ROOT/val/CLASS/*"
        )
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and e.name[0] != ".")
    if not classes:
        raise DataError(f"{split_dir} has no class folders; expected {split_dir}/CLASS/IMAGE files")
    return classes


def check_classes(root: str | os.PathLike, splits: tuple[str, ...] = ("train", "val")) -> list[str]:
    """The class names of ``ROOT/train``, after checking every split has the same ones.

    Raises:
        DataError: a split is missing or its class folders differ from train's
            (the message lists the differences).
    """
    root = Path(root)
    classes = class_folders(root / splits[0])
    for split in splits[1:]:
        if not (root / split).exists():
            continue
        other = class_folders(root / split)
        if other != classes:
            only_a = sorted(set(classes) - set(other))[:5]
            only_b = sorted(set(other) - set(classes))[:5]
            raise DataError(
                f"class folders differ between {root / splits[0]} ({len(classes)} classes) and "
                f"{root / split} ({len(other)}): only in {splits[0]}: {only_a}, only in {split}: "
                f"{only_b}. Both splits need the same class folders (labels follow their order)."
            )
    return classes
