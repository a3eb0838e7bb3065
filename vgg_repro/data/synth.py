"""A small synthetic image-classification dataset in the ImageNet folder layout.

The miniature profile of the DVC pipeline (``dvc repro``) trains on this data on
a laptop CPU. Each image is one filled shape of a class (circle, star, cross...)
at a random scale, position, small rotation and colour, drawn on a cluttered
background of colour gradients, strokes, outlines and noise, and saved as a JPEG
of random size and aspect ratio, like an ImageNet photo::

    vgg-repro data synth --out data/miniature          # the committed dataset
    vgg-repro data synth --dataset transfer --out data/transfer   # Appendix B's data
    vgg-repro data synth --out /tmp/tiny --train-per-class 2 --val-per-class 1

The layout is ``OUT/{train,val}/CLASS/CLASS_SPLIT_NNNNN.jpg``. Every image has its
own random generator seeded by ``(seed, split, class, index)``, so a run is
deterministic and a small run draws exactly the first images of a large one.
The committed JPEG files, not this generator, are the dataset of record
(``data/pins.yaml`` pins them): JPEG encoders differ across Pillow and libjpeg
versions, so regenerating may give other bytes for the same pixels.

Why these choices (see ``data/README.md``): the paper's questions need room to
show. Objects at varied scale and position make scale jittering and multi-scale
testing (Sec. 3.1, 3.2) matter; clutter and colour variation keep the narrowest
net A above chance but far from 100% after the miniature budget (measured: 78.8%
top-1 error against 90% for chance, after 25 epochs).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vgg_repro.errors import ConfigError

__all__ = [
    "CLASSES",
    "DATASETS",
    "SPLITS",
    "TRANSFER_CLASSES",
    "TRANSFER_SPLITS",
    "draw_image",
    "generate",
    "main",
    "object_colour",
    "sample_grid",
    "shape_polygons",
]

# The class names, in label order (sorted, as ImageFolder sorts folder names).
CLASSES: tuple[str, ...] = (
    "arrow",
    "circle",
    "crescent",
    "cross",
    "heart",
    "hexagon",
    "ring",
    "square",
    "star",
    "triangle",
)
SPLITS: tuple[str, ...] = ("train", "val")
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}

# The classes of data/transfer (Appendix B: descriptors of the trained nets on a
# dataset that no net was trained on): ten other shapes, none of them one of
# CLASSES, drawn the same way. Its splits are train (the classifier's) and test.
TRANSFER_CLASSES: tuple[str, ...] = (
    "chevron",
    "diamond",
    "hourglass",
    "house",
    "l-shape",
    "pentagon",
    "semicircle",
    "t-shape",
    "trapezoid",
    "wedge",
)
TRANSFER_SPLITS: tuple[str, ...] = ("train", "test")

# Defaults of the committed dataset data/miniature. The shorter sides, 40 to 96
# pixels, straddle the miniature profile's training scales S = 37, 55 and
# [37, 73] (the paper's 256, 384 and [256, 512] times 32/224), as ImageNet's
# photos (shorter side around 375) straddle the paper's.
DEFAULTS = {
    "seed": 2015,
    "train_per_class": 400,
    "val_per_class": 150,  # 1,500 validation images: a standard error of about 1 point
    "min_side": 40,
    "max_side": 96,
    "clutter": 2,
    "min_object": 0.3,
    "max_object": 0.9,
    "contrast": 100.0,
}
# data/transfer: Caltech-101's 30 training images per class (Appendix B, Table 11),
# and 50 test images per class (500 in all: a standard error of about 2 points).
TRANSFER_DEFAULTS = {"seed": 2016, "train_per_class": 30, "val_per_class": 50}
_SUPERSAMPLE = 3  # draw at 3x and downsample: anti-aliased edges, like a photo


def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> list[tuple[float, float]]:
    return [
        (
            radius * math.cos(phase + 2 * math.pi * k / n),
            radius * math.sin(phase + 2 * math.pi * k / n),
        )
        for k in range(n)
    ]


def _circle(radius: float = 1.0, n: int = 48) -> list[tuple[float, float]]:
    return _regular(n, radius)


def shape_polygons(name: str) -> list[tuple[list[tuple[float, float]], bool]]:
    """A class's shape as polygons in the unit square [-1, 1]^2.

    Returns a list of ``(points, filled)``: ``filled=False`` polygons are holes
    cut back out of the shape (the ring's centre, the crescent's bite).

    >>> [len(p) for p, _ in shape_polygons("square")]
    [4]
    >>> shape_polygons("ring")[1][1]
    False
    """
    if name == "circle":
        return [(_circle(0.95), True)]
    if name == "ring":
        return [(_circle(0.95), True), (_circle(0.55), False)]
    if name == "square":
        return [(_regular(4, 1.0, math.pi / 4), True)]
    if name == "triangle":
        return [(_regular(3, 1.0, -math.pi / 2), True)]
    if name == "hexagon":
        return [(_regular(6, 0.95), True)]
    if name == "star":
        pts = []
        for k in range(10):
            r = 1.0 if k % 2 == 0 else 0.42
            a = -math.pi / 2 + math.pi * k / 5
            pts.append((r * math.cos(a), r * math.sin(a)))
        return [(pts, True)]
    if name == "cross":
        t = 0.3
        pts = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1)]
        pts += [(-t, t), (-1, t), (-1, -t), (-t, -t)]
        return [(pts, True)]
    if name == "crescent":
        bite = [(x + 0.45, y - 0.15) for x, y in _circle(0.8)]
        return [(_circle(0.95), True), (bite, False)]
    if name == "heart":
        pts = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 17.0, -y / 17.0 - 0.1))
        return [(pts, True)]
    if name == "arrow":
        pts = [(-1, -0.25), (0.15, -0.25), (0.15, -0.65), (1, 0), (0.15, 0.65), (0.15, 0.25)]
        pts += [(-1, 0.25)]
        return [(pts, True)]
    transfer = _transfer_polygon(name)
    if transfer is not None:
        return [(transfer, True)]
    valid = ", ".join((*CLASSES, *TRANSFER_CLASSES))
    raise ConfigError(f"unknown synthetic class {name!r}; valid: {valid}")


def _transfer_polygon(name: str) -> list[tuple[float, float]] | None:
    """The outline of a class of :data:`TRANSFER_CLASSES`, or None for another name."""
    shapes: dict[str, list[tuple[float, float]]] = {
        "chevron": [(-1, -0.7), (-0.4, -0.7), (0.3, 0), (-0.4, 0.7), (-1, 0.7), (-0.3, 0)],
        "diamond": [(0, -1), (0.6, 0), (0, 1), (-0.6, 0)],
        "hourglass": [(-0.8, -1), (0.8, -1), (0.12, 0), (0.8, 1), (-0.8, 1), (-0.12, 0)],
        "house": [(0, -1), (0.9, -0.2), (0.9, 1), (-0.9, 1), (-0.9, -0.2)],
        "l-shape": [(-0.8, -1), (-0.25, -1), (-0.25, 0.45), (0.8, 0.45), (0.8, 1), (-0.8, 1)],
        "pentagon": _regular(5, 0.95, -math.pi / 2),
        "semicircle": [(0.95 * math.cos(a), 0.3 - 0.95 * math.sin(a)) for a in _angles(0, 24)],
        "t-shape": [(-1, -1), (1, -1), (1, -0.45), (0.28, -0.45), (0.28, 1), (-0.28, 1)]
        + [(-0.28, -0.45), (-1, -0.45)],
        "trapezoid": [(-0.45, -0.6), (0.45, -0.6), (1, 0.6), (-1, 0.6)],
        "wedge": [(0, 0)] + [(0.95 * math.cos(a), 0.95 * math.sin(a)) for a in _angles(0.7, 32)],
    }
    return shapes.get(name)


def _angles(start: float, n: int) -> list[float]:
    """``n + 1`` angles from ``start`` to ``pi`` (semicircle) or ``2 pi - start`` (wedge)."""
    stop = math.pi if start == 0 else 2 * math.pi - start
    return [start + (stop - start) * k / n for k in range(n + 1)]


def _luma(rgb) -> float:
    """ITU-R BT.601 brightness of an RGB colour, 0..255.

    >>> _luma((255, 255, 255))
    255.0
    """
    r, g, b = (float(v) for v in rgb)
    return 0.299 * r + 0.587 * g + 0.114 * b


def object_colour(rng: np.random.Generator, around, contrast: float) -> tuple[int, int, int]:
    """A random colour whose brightness differs from ``around``'s by more than ``contrast``.

    Draws until one does, at most 50 times, then keeps the last: for 100 grey
    levels and a random surround, 94% of objects get there (measured over 400
    surrounds), the rest stand out less.
    """
    fill = _colour(rng)
    for _ in range(50):
        if abs(_luma(fill) - _luma(around)) > contrast:
            break
        fill = _colour(rng)
    return fill


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _transform(
    points, cx: float, cy: float, size: float, angle: float
) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + size * (c * x - s * y), cy + size * (s * x + c * y)) for x, y in points]


def _background(rng: np.random.Generator, w: int, h: int, clutter: int) -> Image.Image:
    """A cluttered background: gradient, strokes, outlines, blobs and noise."""
    c0, c1 = np.array(_colour(rng)), np.array(_colour(rng))
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    t = (math.cos(angle) * xx / w + math.sin(angle) * yy / h + 1) / 2
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    canvas = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    scale = min(w, h)
    for _ in range(int(rng.integers(clutter // 3, clutter + 1))):  # never a class shape
        kind = rng.integers(0, 3)
        x0, y0 = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        r = rng.uniform(0.05, 0.35) * scale
        width = int(rng.integers(1, max(2, scale // 20)))
        if kind == 0:  # a stroke
            a = rng.uniform(0, 2 * math.pi)
            draw.line(
                [(x0, y0), (x0 + 2 * r * math.cos(a), y0 + 2 * r * math.sin(a))],
                fill=_colour(rng),
                width=width,
            )
        elif kind == 1:  # an outline: circle or polygon edges
            n = int(rng.integers(3, 8))
            pts = _transform(_regular(n), x0, y0, r, rng.uniform(0, math.pi))
            draw.line(pts + pts[:1], fill=_colour(rng), width=width)
        else:  # an elongated blob (never round: round filled shapes are a class)
            blob = [(x, y * rng.uniform(0.2, 0.45)) for x, y in _circle(1.0, 24)]
            draw.polygon(_transform(blob, x0, y0, r, rng.uniform(0, math.pi)), fill=_colour(rng))
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.0))))
    return canvas


def draw_image(
    seed: int,
    split: str,
    class_index: int,
    index: int,
    *,
    min_side: int = DEFAULTS["min_side"],
    max_side: int = DEFAULTS["max_side"],
    clutter: int = DEFAULTS["clutter"],
    min_object: float = DEFAULTS["min_object"],
    max_object: float = DEFAULTS["max_object"],
    contrast: float = DEFAULTS["contrast"],
    classes: tuple[str, ...] = CLASSES,
) -> Image.Image:
    """Draw one image; the same arguments give the same pixels.

    Args:
        seed: the dataset's seed.
        split: ``"train"``, ``"val"`` or ``"test"``.
        class_index: position of the class in ``classes``.
        index: the image's number within its class and split.
        min_side: smallest shorter side, in pixels.
        max_side: largest shorter side, in pixels.
        clutter: most background items (strokes, outlines, blobs); at least a third
            of it are drawn.
        min_object: smallest object, as a fraction of the shorter side across.
        max_object: largest object, likewise.
        contrast: least brightness difference between the object and the background
            around it, in grey levels (0..255).
        classes: the dataset's class names (:data:`CLASSES` or :data:`TRANSFER_CLASSES`).

    Returns:
        An RGB image of random size: shorter side in ``[min_side, max_side]``,
        aspect ratio between 1:2 and 2:1 (mostly 4:3 landscape, as in ImageNet).
    """
    rng = np.random.default_rng([seed, _SPLIT_ID[split], class_index, index])
    short = int(rng.integers(min_side, max_side + 1))
    aspect = float(rng.choice([4 / 3, 4 / 3, 3 / 2, 1.0, 3 / 4, 5 / 4, 16 / 9, 2 / 3]))
    aspect *= float(rng.uniform(0.9, 1.1))
    if aspect >= 1:
        w, h = round(short * min(aspect, 2.0)), short
    else:
        w, h = short, round(short / max(aspect, 0.5))
    k = _SUPERSAMPLE
    canvas = _background(rng, w * k, h * k, clutter)
    # The object: min_object to max_object of the shorter side across (30% to 90%:
    # a 3x range of object scale, for scale jittering and multi-scale testing to
    # act on), its centre in the middle 40% of the image.
    size = rng.uniform(min_object, max_object) / 2 * short * k
    cx = rng.uniform(0.3, 0.7) * w * k
    cy = rng.uniform(0.3, 0.7) * h * k
    angle = rng.uniform(-0.5, 0.5)  # mostly upright, as objects in photos
    # Any colour, but one whose brightness differs from the background around it by
    # at least `contrast` grey levels, as objects in photos mostly do (measured: with
    # an RGB difference alone, net A at width 1/16 stayed near chance for 15 epochs).
    around = np.asarray(
        canvas.crop((int(cx - size), int(cy - size), int(cx + size), int(cy + size))),
        dtype=np.float32,
    )
    local = around.reshape(-1, 3).mean(axis=0) if around.size else np.full(3, 128.0)
    fill = object_colour(rng, local, contrast)
    mask = Image.new("L", canvas.size, 0)
    mdraw = ImageDraw.Draw(mask)
    for points, filled in shape_polygons(classes[class_index]):
        mdraw.polygon(_transform(points, cx, cy, size, angle), fill=255 if filled else 0)
    # A little shading on the object so that it is not a flat colour either.
    shade = np.asarray(fill, dtype=np.float32) * rng.uniform(0.85, 1.0, size=(h * k, w * k, 1))
    obj = Image.fromarray(shade.clip(0, 255).astype(np.uint8))
    canvas.paste(obj, (0, 0), mask)
    img = canvas.resize((w, h), Image.Resampling.LANCZOS)
    noise = rng.normal(0, rng.uniform(2, 6), size=(h, w, 3))
    return Image.fromarray(
        (np.asarray(img, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8)
    )


def generate(
    out: str | Path,
    *,
    seed: int | None = None,
    train_per_class: int | None = None,
    val_per_class: int | None = None,
    min_side: int = DEFAULTS["min_side"],
    max_side: int = DEFAULTS["max_side"],
    clutter: int = DEFAULTS["clutter"],
    min_object: float = DEFAULTS["min_object"],
    max_object: float = DEFAULTS["max_object"],
    contrast: float = DEFAULTS["contrast"],
    num_classes: int | None = None,
    dataset: str = "miniature",
) -> int:
    """Write the dataset under ``out`` and return the number of images written.

    JPEG quality varies between 75 and 95 per image (seeded), as in photos.

    ``dataset`` chooses the classes and splits: ``"miniature"`` (:data:`CLASSES`,
    ``train`` and ``val``) or ``"transfer"`` (:data:`TRANSFER_CLASSES`, ``train``
    and ``test``; ``val_per_class`` then counts the test images). The counts and
    the seed default to the committed dataset's (:data:`DEFAULTS`,
    :data:`TRANSFER_DEFAULTS`).

    Raises:
        ConfigError: on a count below 1, too many classes or bad side bounds.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    classes, splits, defaults = DATASETS[dataset]
    seed = defaults["seed"] if seed is None else seed
    train_per_class = defaults["train_per_class"] if train_per_class is None else train_per_class
    val_per_class = defaults["val_per_class"] if val_per_class is None else val_per_class
    num_classes = len(classes) if num_classes is None else num_classes
    if not 1 <= num_classes <= len(classes):
        raise ConfigError(f"num_classes must be in 1..{len(classes)}; got {num_classes}")
    if train_per_class < 1 or val_per_class < 1:
        raise ConfigError("--train-per-class and --val-per-class must be at least 1")
    if not 8 <= min_side <= max_side:
        raise ConfigError(f"need 8 <= min_side <= max_side; got {min_side}, {max_side}")
    if not 0 < min_object <= max_object <= 1:
        raise ConfigError(
            f"need 0 < min_object <= max_object <= 1 (fractions of the shorter side); "
            f"got {min_object}, {max_object}"
        )
    if not 0 <= contrast < 255:
        raise ConfigError(f"contrast must be in [0, 255) grey levels; got {contrast}")
    out = Path(out)
    count = 0
    for split, per_class in zip(splits, (train_per_class, val_per_class), strict=True):
        for c in range(num_classes):
            folder = out / split / classes[c]
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = draw_image(
                    seed,
                    split,
                    c,
                    i,
                    min_side=min_side,
                    max_side=max_side,
                    clutter=clutter,
                    min_object=min_object,
                    max_object=max_object,
                    contrast=contrast,
                    classes=classes,
                )
                quality = int(
                    np.random.default_rng([seed, 7, _SPLIT_ID[split], c, i]).integers(75, 96)
                )
                img.save(folder / f"{classes[c]}_{split}_{i:05d}.jpg", quality=quality)
                count += 1
    return count


def sample_grid(
    root: str | Path, split: str = "val", per_class: int = 8, cell: int = 64
) -> Image.Image:
    """A picture of a dataset: one row per class (sorted), ``per_class`` images each.

    Each image is rescaled so that its shorter side is ``cell`` and centre-cropped
    to a square, the view the nets' crops take. The docs show this grid of
    ``data/miniature``.

    Raises:
        ConfigError: the split has no class folders or a class has too few images.
    """
    folder = Path(root) / split
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise ConfigError(f"{folder} has no class folders; make it with `vgg-repro data synth`")
    gap = 2
    grid = Image.new("RGB", (per_class * (cell + gap) - gap, len(classes) * (cell + gap) - gap))
    grid.paste((255, 255, 255), (0, 0, *grid.size))
    for row, name in enumerate(classes):
        files = sorted((folder / name).glob("*.jpg"))[:per_class]
        if len(files) < per_class:
            raise ConfigError(f"{folder / name} has {len(files)} images, fewer than {per_class}")
        for col, path in enumerate(files):
            with Image.open(path) as img:
                img = img.convert("RGB")
                w, h = img.size
                k = cell / min(w, h)
                img = img.resize((max(cell, round(w * k)), max(cell, round(h * k))))
                w, h = img.size
                left, top = (w - cell) // 2, (h - cell) // 2
                img = img.crop((left, top, left + cell, top + cell))
            grid.paste(img, (col * (cell + gap), row * (cell + gap)))
    return grid


DATASETS: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict]] = {
    "miniature": (CLASSES, SPLITS, DEFAULTS),
    "transfer": (TRANSFER_CLASSES, TRANSFER_SPLITS, TRANSFER_DEFAULTS),
}


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro data synth``: write the synthetic dataset."""
    parser = argparse.ArgumentParser(
        prog="vgg-repro data synth",
        description="Write a synthetic shapes dataset in the ImageNet folder layout "
        "(OUT/SPLIT/CLASS/*.jpg). With the defaults, --dataset miniature makes "
        "data/miniature (train, val) and --dataset transfer makes data/transfer "
        "(train, test: ten other shapes, for the Appendix B descriptors).",
    )
    parser.add_argument("--out", required=True, help="output folder (e.g. data/miniature)")
    parser.add_argument(
        "--dataset", choices=list(DATASETS), default="miniature", help="which classes and splits"
    )
    parser.add_argument("--seed", type=int, default=None, help="default: the dataset's")
    parser.add_argument(
        "--classes", type=int, default=None, help="number of classes (default: all)"
    )
    parser.add_argument(
        "--train-per-class", type=int, default=None, help="default: the dataset's (400; 30)"
    )
    parser.add_argument(
        "--val-per-class",
        "--test-per-class",
        dest="val_per_class",
        type=int,
        default=None,
        help="images per class of the second split, val or test (default: 150; 50)",
    )
    parser.add_argument("--min-side", type=int, default=DEFAULTS["min_side"])
    parser.add_argument("--max-side", type=int, default=DEFAULTS["max_side"])
    parser.add_argument(
        "--clutter", type=int, default=DEFAULTS["clutter"], help="most background items per image"
    )
    parser.add_argument(
        "--min-object",
        type=float,
        default=DEFAULTS["min_object"],
        help="smallest object across, as a fraction of the shorter side",
    )
    parser.add_argument(
        "--max-object",
        type=float,
        default=DEFAULTS["max_object"],
        help="largest object across, as a fraction of the shorter side",
    )
    parser.add_argument(
        "--contrast",
        type=float,
        default=DEFAULTS["contrast"],
        help="least brightness difference between object and background (grey levels)",
    )
    args = parser.parse_args(argv)
    n = generate(
        args.out,
        seed=args.seed,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        min_side=args.min_side,
        max_side=args.max_side,
        clutter=args.clutter,
        min_object=args.min_object,
        max_object=args.max_object,
        contrast=args.contrast,
        num_classes=args.classes,
        dataset=args.dataset,
    )
    print(f"wrote {n} images of the {args.dataset} dataset under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
