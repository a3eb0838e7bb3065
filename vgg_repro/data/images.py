"""Image files as the paper's training data: decoding, the folder dataset, its sampler.

The layout is ImageNet's, and any image folder in it works the same way::

    ROOT/train/CLASS/*.JPEG     (any of .jpg .jpeg .png .bmp .ppm .tif .tiff .webp)
    ROOT/val/CLASS/*.JPEG       (same class folders as train; checked)

Images in the wild (greyscale, CMYK, RGBA, palette) are converted to RGB. An
unreadable file raises :class:`~vgg_repro.errors.DataError` naming it; with
``skip_bad_files`` it is replaced by the next readable image and listed in a report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler

from vgg_repro.data.folders import IMAGE_EXTENSIONS, class_folders
from vgg_repro.data.transforms import isotropic_rescale, to_uint8_tensor
from vgg_repro.errors import DataError

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
        transform: :class:`~vgg_repro.data.transforms.TrainTransform` or ``EvalTransform``.
        classes: expected class names (default: the folders found).
        skip_bad_files: replace an unreadable image by the next readable one
            instead of raising; each skipped file is appended to ``skip_log``.
        skip_log: text file listing skipped files, one per line (appended to by
            every worker process).
        jpeg_draft: let libjpeg decode at reduced size (see :func:`load_image`).
        cache_decoded: keep each image in memory once decoded, rescaled to the
            transform's fixed scale if it has one (``fixed_scale``), so that later
            epochs only crop and flip (as tensor slicing, for a transform with
            ``accepts_rescaled_tensor``). For datasets that fit in memory (the
            miniature: about 20 MB at S = 37), not for ImageNet. Each loader
            process keeps its own copy.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable,
        classes: list[str] | None = None,
        skip_bad_files: bool = False,
        skip_log: str | os.PathLike | None = None,
        jpeg_draft: bool = True,
        cache_decoded: bool = False,
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
        # A class folder without images is a label that can never be learnt or tested.
        counted = {label for _, label in self.samples}
        self.empty_classes = [c for i, c in enumerate(self.classes) if i not in counted]
        if self.empty_classes and not skip_bad_files:
            raise DataError(
                f"class folder {self.root / self.empty_classes[0]} has no images "
                f"({len(self.empty_classes)} such folders in {self.root}); add its images or "
                "remove the folder, or set data.skip_bad_files=true to go on with a warning"
            )
        self.transform, self.skip_bad_files, self.jpeg_draft = transform, skip_bad_files, jpeg_draft
        self.skip_log = Path(skip_log) if skip_log else None
        self.cache_decoded = cache_decoded
        self._cache: dict[int, Image.Image | torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        for _ in range(MAX_CONSECUTIVE_BAD):
            path, label = self.samples[index]
            try:
                img = self._decoded(index, path, seed)
            except DataError:
                if not self.skip_bad_files:
                    raise
                self._record_skip(path)
                index = (index + 1) % len(self.samples)
                continue
            image, *extras = self.transform(img, seed)
            return (image, label, *extras)
        raise DataError(f"{MAX_CONSECUTIVE_BAD} consecutive unreadable images in {self.root}")

    def _decoded(self, index: int, path: str, seed: int) -> Image.Image | torch.Tensor:
        if not self.cache_decoded:
            min_side = self.transform.target_scale(seed) if self.jpeg_draft else None
            return load_image(path, min_side)
        img = self._cache.get(index)
        if img is None:
            fixed = getattr(self.transform, "fixed_scale", None)
            largest = getattr(self.transform, "largest_scale", None)
            img = load_image(path, largest if self.jpeg_draft else None)
            if fixed is not None:
                # The transform's rescale to this size is then a no-op; a transform that
                # takes the rescaled image as a tensor only slices it at every epoch.
                img = isotropic_rescale(img, fixed)
                if getattr(self.transform, "accepts_rescaled_tensor", False):
                    img = to_uint8_tensor(img)
            self._cache[index] = img
        return img

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
