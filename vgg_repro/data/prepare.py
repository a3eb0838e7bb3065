"""``vgg-repro data prepare``: shrink a dataset once so decoding stops being the bottleneck.

Training never looks at more than the largest scale S (512 for the paper's
jittering, Sec. 3.1) and testing at more than the largest Q (512, Sec. 3.2),
yet ImageNet's photos average about 400x350 and reach several thousand pixels.
This offline pass re-encodes every image whose shorter side exceeds
``max_side`` to exactly that shorter side, and copies the others byte for byte,
keeping the ``SPLIT/CLASS/FILE`` layout::

    vgg-repro data prepare imagenet/ imagenet-512/ --max-side 512

It is resumable: finished files are written under their final name only once
complete (temporary file, then rename), and a rerun skips them. Files that are
not images by name are listed, not copied; unreadable images stop the pass with
the file named unless ``--skip-bad-files``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from vgg_repro.data.folders import IMAGE_EXTENSIONS
from vgg_repro.data.images import load_image
from vgg_repro.data.transforms import isotropic_rescale
from vgg_repro.errors import ConfigError, DataError

JPEG_QUALITY = 90  # high enough that re-encoding noise is far below the colour shift's


def prepare_file(src: str, dst: str, max_side: int) -> str:
    """Write one image to ``dst``: copied if small enough, else rescaled and re-encoded.

    Returns:
        ``"copied"``, ``"resized"`` or ``"done"`` (``dst`` existed already).
    """
    out = Path(dst)
    if out.exists():
        return "done"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    with Image.open(src) as probe:
        small, encoding = min(probe.size) <= max_side, probe.format
    if small:
        shutil.copyfile(src, tmp)
        status = "copied"
    else:
        img = isotropic_rescale(load_image(src, min_side=max_side), max_side)
        # Re-encoded in the file's own format, so that its name still says what it
        # holds (a .png stays a lossless PNG); JPEG and WebP at JPEG_QUALITY.
        lossy = encoding in ("JPEG", "WEBP")
        img.save(tmp, format=encoding or "PNG", **({"quality": JPEG_QUALITY} if lossy else {}))
        status = "resized"
    os.replace(tmp, out)  # atomic: a killed pass never leaves a half-written image
    return status


def _job(args: tuple[str, str, int, bool]) -> tuple[str, str]:
    src, dst, max_side, skip = args
    try:
        return src, prepare_file(src, dst, max_side)
    except (OSError, ValueError, SyntaxError, DataError) as err:
        if not skip:
            raise DataError(
                f"cannot read image {src}: {err}. Remove it, or pass --skip-bad-files"
            ) from None
        return src, "skipped"


def prepare(
    src_root: str | os.PathLike,
    dst_root: str | os.PathLike,
    max_side: int = 512,
    workers: int | None = None,
    skip_bad_files: bool = False,
    progress: bool = True,
) -> dict[str, list[str] | int]:
    """Re-encode ``src_root`` into ``dst_root`` with shorter sides at most ``max_side``.

    Returns:
        Counts of ``copied``, ``resized``, ``done`` (already there) and the
        lists ``skipped`` (unreadable) and ``not_images`` (by file name).
    """
    src_root, dst_root = Path(src_root), Path(dst_root)
    if max_side < 32:
        raise ConfigError(f"--max-side must be at least 32; got {max_side}")
    if not src_root.is_dir():
        raise DataError(f"{src_root} is not a folder")
    if dst_root.resolve() == src_root.resolve():
        raise ConfigError("the output folder must differ from the input folder")
    jobs, not_images = [], []
    for folder, _, files in sorted(os.walk(src_root)):
        for name in sorted(files):
            src = Path(folder) / name
            if name.startswith("."):
                continue
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                not_images.append(str(src))
                continue
            dst = dst_root / src.relative_to(src_root)
            jobs.append((str(src), str(dst), max_side, skip_bad_files))
    result: dict[str, list[str] | int] = {"copied": 0, "resized": 0, "done": 0}
    result |= {"skipped": [], "not_images": not_images}
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        results = pool.map(_job, jobs, chunksize=16)
        for src, status in tqdm(results, total=len(jobs), disable=not progress, unit="img"):
            if status == "skipped":
                result["skipped"].append(src)
            else:
                result[status] += 1
    return result


def main(argv: list[str]) -> int:
    """``vgg-repro data prepare SRC DST [--max-side 512]``."""
    parser = argparse.ArgumentParser(
        prog="vgg-repro data prepare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("src", help="dataset root (e.g. with train/ and val/)")
    parser.add_argument("dst", help="output root; existing finished files are kept (resume)")
    parser.add_argument("--max-side", type=int, default=512, help="largest S or Q in use (512)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--skip-bad-files", action="store_true")
    args = parser.parse_args(argv)
    result = prepare(
        args.src, args.dst, args.max_side, args.workers, args.skip_bad_files, sys.stderr.isatty()
    )
    print(
        f"{args.dst}: {result['resized']} resized, {result['copied']} copied, "
        f"{result['done']} already done, {len(result['skipped'])} unreadable skipped, "
        f"{len(result['not_images'])} non-image files not copied"
    )
    for path in result["skipped"]:
        print(f"skipped (unreadable): {path}")
    for path in result["not_images"]:
        print(f"not copied (not an image by name): {path}")
    return 0
