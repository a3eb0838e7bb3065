"""Colour statistics of a training set: the mean RGB subtracted from every pixel
(Sec. 2.1) and the RGB PCA of the colour shift (Sec. 3.1), as ``vgg-repro data stats``
computes them. Without a stats file, ImageNet's published values are used.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from vgg_repro.data import transforms as T
from vgg_repro.data.folders import IMAGE_EXTENSIONS
from vgg_repro.data.images import load_image
from vgg_repro.errors import ConfigError, DataError


def load_stats(path: str | os.PathLike | None) -> dict:
    """Mean RGB and PCA from a ``vgg-repro data stats`` JSON file, or ImageNet's."""
    if path is None:
        return {
            "mean_rgb": list(T.IMAGENET_MEAN_RGB),
            "eigval": list(T.IMAGENET_PCA_EIGVAL),
            "eigvec": [list(r) for r in T.IMAGENET_PCA_EIGVEC],
        }
    try:
        stats = json.loads(Path(path).read_text())
        problem = _stats_problem(stats)
    except (OSError, ValueError) as err:
        problem = str(err)
    if problem:
        raise ConfigError(
            f"data.stats={path} is not a stats file from 'vgg-repro data stats' "
            f"(keys mean_rgb[3], eigval[3], eigvec[3][3]): {problem}"
        )
    return stats


def _stats_problem(stats: object) -> str | None:
    """What is wrong with a parsed stats file, or None.

    >>> _stats_problem({"mean_rgb": [1, 2, 3], "eigval": [1, 1, 1], "eigvec": [[1, 0, 0]] * 3})
    >>> _stats_problem({"mean_rgb": [1, 2]})
    'mean_rgb must hold 3 numbers'
    """
    if not isinstance(stats, dict):
        return "the file must hold a JSON object"
    for key, shape in (("mean_rgb", (3,)), ("eigval", (3,)), ("eigvec", (3, 3))):
        try:
            values = np.asarray(stats[key], dtype=float)
        except KeyError:
            return f"no {key}"
        except (TypeError, ValueError):
            return f"{key} must hold numbers"
        if values.shape != shape:
            count = "3 numbers" if shape == (3,) else "3 rows of 3 numbers"
            return f"{key} must hold {count}"
        if not all(math.isfinite(v) for v in values.ravel()):
            return f"{key} must be finite"
    return None


def _pixel_moments(path: str, size: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    img = load_image(path, size)
    if size:
        img = T.isotropic_rescale(img, size)
    x = np.asarray(img, dtype=np.float64).reshape(-1, 3) / 255.0
    return x.sum(0), x.T @ x, len(x)


def compute_stats(
    root: str | os.PathLike,
    max_images: int | None = None,
    size: int | None = 256,
    skip_bad_files: bool = False,
) -> dict:
    """Mean RGB and the PCA of RGB pixel values over an image folder.

    Args:
        root: a dataset root (its ``train`` split is used when present) or any
            folder of images (searched recursively).
        max_images: use at most this many images, spread evenly over the folder.
        size: rescale each image's shorter side to this first (faster; the
            statistics of colour barely change). ``None``: full resolution.
        skip_bad_files: ignore unreadable images instead of raising.

    Returns:
        A dict with ``mean_rgb`` (3 values on 0..255), ``eigval`` (3, descending),
        ``eigvec`` (3x3, columns are the components), ``num_images`` and
        ``num_pixels``; the PCA is of pixels scaled to [0, 1], the convention of
        AlexNet's constants.
    """
    root = Path(root)
    folder = root / "train" if (root / "train").is_dir() else root
    paths = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise DataError(f"{folder} holds no images with extensions {IMAGE_EXTENSIONS}")
    if max_images and max_images < len(paths):
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).astype(int)]
    total, outer, count, used = np.zeros(3), np.zeros((3, 3)), 0, 0
    for path in paths:
        try:
            s, o, n = _pixel_moments(path, size)
        except DataError:
            if not skip_bad_files:
                raise
            continue
        total, outer, count, used = total + s, outer + o, count + n, used + 1
    if count == 0:
        raise DataError(f"no readable images in {folder}")
    mean = total / count
    cov = outer / count - np.outer(mean, mean)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    return {
        "mean_rgb": (mean * 255.0).round(4).tolist(),
        "eigval": eigval.round(6).tolist(),
        "eigvec": eigvec.round(4).tolist(),
        "num_images": used,
        "num_pixels": int(count),
    }
