"""Image folders as the paper's training data: loading, class checks, statistics.

The layout is ImageNet's, and any image folder in it works the same way::

    ROOT/train/CLASS/*.JPEG     (any of .jpg .jpeg .png .bmp .ppm .tif .tiff .webp)
    ROOT/val/CLASS/*.JPEG       (same class folders as train; checked)

Commands (``vgg-repro data ...``)::

    vgg-repro data stats ROOT [--output stats.json]     # mean RGB + RGB PCA of ROOT/train
    vgg-repro data convert-val FLAT_VAL LABELS --output ROOT/val [--synsets FILE] [--copy]
    vgg-repro data synth ...                             # the miniature dataset (vgg_repro.synth)

Images in the wild (greyscale, CMYK, RGBA, palette) are converted to RGB. An
unreadable file raises :class:`~vgg_repro.errors.DataError` naming it; with
``skip_bad_files`` it is replaced by the next readable image and listed in a report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler

from vgg_repro import transforms as T
from vgg_repro.errors import ConfigError, DataError
from vgg_repro.folders import IMAGE_EXTENSIONS, check_classes, class_folders  # noqa: F401

MAX_CONSECUTIVE_BAD = 100  # with skip_bad_files: give up on a folder that is mostly unreadable


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as RGB; transparent pixels are composited on white.

    >>> to_rgb(Image.new("L", (2, 2), 7)).getpixel((0, 0))
    (7, 7, 7)
    >>> to_rgb(Image.new("RGBA", (2, 2), (9, 9, 9, 0))).getpixel((0, 0))
    (255, 255, 255)
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale PNG
        return Image.fromarray(
            (np.asarray(img, dtype=np.float64) / 257.0).astype(np.uint8)
        ).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK (PIL undoes Adobe's inversion), YCbCr, ...


def load_image(path: str | os.PathLike, min_side: int | None = None) -> Image.Image:
    """Decode an image file as RGB.

    Args:
        path: the image file.
        min_side: if given, a JPEG may be decoded at a reduced size (libjpeg's
            DCT scaling) whose shorter side is still at least ``min_side``:
            several times faster on large photos, then resized as usual.

    Raises:
        DataError: the file cannot be read or decoded; the message names it.
    """
    try:
        with Image.open(path) as img:
            if min_side and img.format == "JPEG":
                w, h = img.size
                ratio = min_side / min(w, h)
                if ratio < 1:
                    img.draft("RGB", (int(w * ratio + 1), int(h * ratio + 1)))
            img.load()
            return to_rgb(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(
            f"cannot read image {path}: {err}. Remove or replace the file, or set "
            "data.skip_bad_files=true to skip unreadable images (they are listed in a report)."
        ) from None


class ImageFolder(Dataset):
    """``ROOT/CLASS/IMAGE`` files with labels in sorted class order.

    An item is ``(uint8 image (3, H, W), label, *extras)``, the extras being what
    the transform adds (the colour-shift multipliers in training). Indices may be
    ``(index, seed)`` pairs (from :class:`SeededSampler`): the seed drives every
    random choice of the transform.

    Args:
        root: the split folder (``ROOT/train`` or ``ROOT/val``).
        transform: :class:`~vgg_repro.transforms.TrainTransform` or ``EvalTransform``.
        classes: expected class names (default: the folders found).
        skip_bad_files: replace an unreadable image by the next readable one
            instead of raising; each skipped file is appended to ``skip_log``.
        skip_log: text file listing skipped files, one per line (appended to by
            every worker process).
        jpeg_draft: let libjpeg decode at reduced size (see :func:`load_image`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable,
        classes: list[str] | None = None,
        skip_bad_files: bool = False,
        skip_log: str | os.PathLike | None = None,
        jpeg_draft: bool = True,
    ) -> None:
        self.root = Path(root)
        found = class_folders(self.root)
        self.classes = list(classes) if classes is not None else found
        if found != self.classes:
            raise DataError(
                f"{self.root} has class folders {found[:5]}..., expected {self.classes[:5]}..."
            )
        self.samples: list[tuple[str, int]] = []
        # Every file is used or reported: files whose name is not an image's are
        # listed here (and warned about by the DataModule), never silently dropped.
        self.ignored: list[str] = []
        for label, name in enumerate(self.classes):
            entries = [e for e in os.scandir(self.root / name) if e.is_file()]
            files = sorted(e.path for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS))
            self.ignored += sorted(
                e.path
                for e in entries
                if not e.name.lower().endswith(IMAGE_EXTENSIONS) and not e.name.startswith(".")
            )
            self.samples += [(f, label) for f in files]
        if not self.samples:
            raise DataError(f"{self.root} holds no images with extensions {IMAGE_EXTENSIONS}")
        self.transform, self.skip_bad_files, self.jpeg_draft = transform, skip_bad_files, jpeg_draft
        self.skip_log = Path(skip_log) if skip_log else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        for _ in range(MAX_CONSECUTIVE_BAD):
            path, label = self.samples[index]
            min_side = self.transform.target_scale(seed) if self.jpeg_draft else None
            try:
                img = load_image(path, min_side)
            except DataError:
                if not self.skip_bad_files:
                    raise
                self._record_skip(path)
                index = (index + 1) % len(self.samples)
                continue
            image, *extras = self.transform(img, seed)
            return (image, label, *extras)
        raise DataError(f"{MAX_CONSECUTIVE_BAD} consecutive unreadable images in {self.root}")

    def _record_skip(self, path: str) -> None:
        if self.skip_log is not None:
            self.skip_log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.skip_log, "a") as f:  # O_APPEND: one short line is atomic
                f.write(path + "\n")


def read_skip_log(path: str | os.PathLike | None) -> list[str]:
    """The distinct files listed in a skip log, sorted (empty if there is none)."""
    if path is None or not Path(path).is_file():
        return []
    return sorted(set(Path(path).read_text().split("\n")) - {""})


class SeededSampler(DistributedSampler):
    """Shuffled indices, each paired with the seed of its augmentation.

    The order and the seeds are functions of ``(seed, epoch)`` only, as in
    :class:`~torch.utils.data.DistributedSampler` (which this subclasses, so
    Lightning keeps it under DDP). Rank ``r`` of ``R`` takes positions
    ``r, r + R, ...``, so a global batch holds the same images with the same
    crops, flips and colour shifts on one process or many, and a resumed run
    draws exactly what the uninterrupted run would have.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.drop_last = True  # every rank gets the same number of samples
        self.num_samples = len(dataset) // num_replicas
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=g)[: self.total_size]
        seeds = torch.randint(0, 2**62, (self.total_size,), generator=g)
        sl = slice(self.rank, self.total_size, self.num_replicas)
        return iter(zip(order[sl].tolist(), seeds[sl].tolist(), strict=True))


# --- statistics for the colour shift and mean subtraction (`vgg-repro data stats`)


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
        assert len(stats["mean_rgb"]) == 3 and len(stats["eigval"]) == 3
        assert np.asarray(stats["eigvec"], dtype=float).shape == (3, 3)
        values = [*stats["mean_rgb"], *stats["eigval"], *np.ravel(stats["eigvec"])]
        assert np.isfinite(np.asarray(values, dtype=float)).all(), "values must be finite"
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as err:
        raise ConfigError(
            f"data.stats={path} is not a stats file from 'vgg-repro data stats' "
            f"(keys mean_rgb[3], eigval[3], eigvec[3][3]): {err!r}"
        ) from None
    return stats


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


# --- the official validation set: one flat folder plus a label file


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


def main(argv: list[str]) -> int:
    """``vgg-repro data stats|convert-val|synth|prepare``."""
    if argv and argv[0] == "synth":
        from vgg_repro import synth

        return int(synth.main(argv[1:]) or 0)
    if argv and argv[0] == "prepare":
        from vgg_repro import prepare

        return int(prepare.main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="vgg-repro data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("synth", help="write the miniature dataset (see 'vgg-repro data synth --help')")
    sub.add_parser("prepare", help="shrink images to the largest S/Q, once (issue 7)")
    p = sub.add_parser("stats", help="mean RGB and RGB PCA of ROOT/train (for data.stats)")
    p.add_argument("root")
    p.add_argument("--output", "-o", help="write JSON here (default: print it)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--size", type=int, default=256, help="rescale shorter side first (0: off)")
    p.add_argument("--skip-bad-files", action="store_true")
    p = sub.add_parser("convert-val", help="sort the flat official val folder into CLASS folders")
    p.add_argument("flat_dir")
    p.add_argument("labels", help="FILE CLASS lines, LOC_val_solution.csv or devkit ground truth")
    p.add_argument("--output", "-o", required=True, help="e.g. ROOT/val")
    p.add_argument("--synsets", help="class name per line, for integer labels")
    p.add_argument("--mode", choices=["symlink", "copy", "move"], default="symlink")
    args = parser.parse_args(argv)
    if args.cmd == "stats":
        stats = compute_stats(args.root, args.max_images, args.size or None, args.skip_bad_files)
        text = json.dumps(stats, indent=2)
        if args.output:
            Path(args.output).write_text(text + "\n")
            print(f"wrote {args.output} ({stats['num_images']} images)", file=sys.stderr)
        else:
            print(text)
    else:
        n = convert_val(args.flat_dir, args.labels, args.output, args.synsets, args.mode)
        print(f"{n} images sorted into {args.output}")
    return 0
