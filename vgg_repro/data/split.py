"""One folder of class folders split into ``train/`` and ``test/`` (``vgg-repro data split``).

Caltech-101 and Caltech-256 ship as ``CATEGORY/IMAGE`` folders with no split; Appendix B
trains its linear SVM on a fixed number of images per class (30 for Caltech-101, 60 for
Caltech-256, Table 11) and tests on others. This draws that split, seeded, into the
layout that ``vgg-repro features`` and the pipeline's transfer stage read::

    vgg-repro data split 101_ObjectCategories --out caltech101 --train-per-class 30
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
from pathlib import Path

from vgg_repro.data.folders import IMAGE_EXTENSIONS, class_folders
from vgg_repro.errors import ConfigError, DataError

__all__ = ["main", "split_folder"]


def split_folder(
    source: str | os.PathLike,
    out: str | os.PathLike,
    train_per_class: int,
    test_per_class: int | None = None,
    *,
    seed: int = 0,
    mode: str = "symlink",
    skip: tuple[str, ...] = (),
) -> dict[str, int]:
    """Put ``train_per_class`` random images of each class of ``source`` in ``out/train``
    and the others (at most ``test_per_class``) in ``out/test``.

    Args:
        source: ``CLASS/IMAGE`` folders.
        out: a new folder (refused if it exists, so that nothing is overwritten).
        train_per_class: training images per class.
        test_per_class: test images per class; all the others if None.
        seed: the draw; the same seed gives the same split.
        mode: ``symlink`` (default) or ``copy``.
        skip: class folders to leave out (Caltech-101's ``BACKGROUND_Google``).

    Returns:
        Images per split.

    Raises:
        DataError: a class with too few images, or ``out`` exists.
    """
    source, out = Path(source), Path(out)
    if mode not in ("symlink", "copy"):
        raise ConfigError(f"unknown mode {mode!r}; choose symlink or copy")
    if train_per_class < 1 or (test_per_class is not None and test_per_class < 1):
        raise ConfigError("--train-per-class and --test-per-class must be at least 1")
    if out.exists():
        raise DataError(f"{out} exists: give a new folder (nothing is overwritten)")
    classes = [c for c in class_folders(source) if c not in skip]
    plan: dict[str, list[tuple[str, list[Path]]]] = {"train": [], "test": []}
    for name in classes:
        files = sorted(
            p for p in (source / name).iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if len(files) <= train_per_class:
            raise DataError(
                f"{source / name} has {len(files)} images: it needs more than "
                f"--train-per-class {train_per_class} to leave test images; lower it or "
                f"leave the class out with --skip {name}"
            )
        random.Random(f"{seed}/{name}").shuffle(files)
        plan["train"].append((name, files[:train_per_class]))
        rest = files[train_per_class:]
        plan["test"].append((name, rest if test_per_class is None else rest[:test_per_class]))
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for split, entries in plan.items():
        counts[split] = 0
        for name, files in entries:
            folder = tmp / split / name
            folder.mkdir(parents=True)
            for f in files:
                if mode == "symlink":
                    (folder / f.name).symlink_to(f.resolve())
                else:
                    shutil.copy2(f, folder / f.name)
                counts[split] += 1
    os.replace(tmp, out)  # the whole split appears at once, or not at all
    return counts


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro data split``."""
    parser = argparse.ArgumentParser(
        prog="vgg-repro data split",
        description="Split a folder of class folders (Caltech-101, Caltech-256, your own) "
        "into OUT/train/CLASS and OUT/test/CLASS, seeded: the layout of vgg-repro features "
        "and the pipeline's transfer stage.",
    )
    parser.add_argument("source", help="a folder of CLASS/IMAGE folders")
    parser.add_argument("--out", required=True, help="a new folder for train/ and test/")
    parser.add_argument(
        "--train-per-class",
        type=int,
        required=True,
        help="training images per class (Table 11: 30 for Caltech-101, 60 for Caltech-256)",
    )
    parser.add_argument(
        "--test-per-class", type=int, default=None, help="test images per class (default: the rest)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the draw (default 0)")
    parser.add_argument("--mode", choices=["symlink", "copy"], default="symlink")
    parser.add_argument(
        "--skip", action="append", default=[], metavar="CLASS", help="a class folder to leave out"
    )
    args = parser.parse_args(argv)
    counts = split_folder(
        args.source,
        args.out,
        args.train_per_class,
        args.test_per_class,
        seed=args.seed,
        mode=args.mode,
        skip=tuple(args.skip),
    )
    print(f"{counts['train']} training and {counts['test']} test images under {args.out}")
    return 0
