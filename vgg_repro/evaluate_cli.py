"""``vgg-repro evaluate``: the paper's testing (Sec. 3.2, Tables 3 to 6) over a data folder.

    vgg-repro evaluate --ckpt runs/D/last.ckpt --data imagenet/val \\
        --protocol dense --scales multi --output metrics.json
    vgg-repro evaluate --ckpt D.ckpt --ckpt E.ckpt --data imagenet/val \\
        --protocol dense+multi-crop --scales 256,384,512          # fusion, Table 6
    vgg-repro evaluate --torchvision vgg16 --weights vgg16-397923af.pth \\
        --data imagenet/val --scales 256,384,512                  # torchvision's weights

This module holds what turns files into the pure protocols of
:mod:`vgg_repro.evaluation`: the networks (:class:`EvalNet` from a checkpoint or
torchvision weights), their test scales (:func:`resolve_scales`), the loop over
``ROOT/CLASS/IMAGE`` (:func:`evaluate_folder`) and the command line (:func:`main`).

The metrics (returned by :func:`evaluate_folder`, written by ``--output``):
``top1_error``, ``top5_error`` (percent), ``n_images``, ``num_classes``,
``protocol``, ``scales`` (every Q used), ``checkpoints`` (per net: ``path``,
``arch``, ``width``, ``crop_size``, ``train_scale``, ``test_scales``,
``mean_rgb``, ``std_rgb``), ``per_class_accuracy`` (class folder -> top-1 accuracy in percent),
``images_per_second``, ``seconds``, ``device``, ``data``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from vgg_repro import checkpoints, models
from vgg_repro import data as D
from vgg_repro import transforms as T
from vgg_repro.errors import CheckpointError, ConfigError, DataError
from vgg_repro.evaluation import (
    PROTOCOLS,
    ScoreMapNet,
    load_image,
    multi_scale,
    rescale,
    topk_correct,
)
from vgg_repro.tables import render_table

__all__ = [
    "EvalNet",
    "eval_precision",
    "evaluate_folder",
    "load_network",
    "load_torchvision",
    "main",
]

PAPER_CROP = 224  # Sec. 2.1: 224x224 training crops
SCALE_STEP = 32  # Sec. 4.2: fixed-S nets are tested at Q = {S-32, S, S+32}


@dataclass
class EvalNet:
    """A network to evaluate, with what evaluation needs to know about it.

    Attributes:
        model: the network (classifier form).
        source: checkpoint path or weights file, for reports.
        classes: class names in output order, or None (then sorted folder order).
        mean_rgb, std_rgb: input normalisation in pixel units.
        train_scale: ``(S_min, S_max)`` of training, or None if unknown.
        width: channel multiplier (1.0: the paper's net).
        meta: the checkpoint's ``vgg_repro`` description (with the pipeline's training
            seed and environment); empty for torchvision's weights.
    """

    model: models.VGG
    source: str
    classes: list[str] | None = None
    mean_rgb: tuple[float, ...] = T.IMAGENET_MEAN_RGB
    std_rgb: tuple[float, ...] = (1.0, 1.0, 1.0)
    train_scale: tuple[int, int] | None = None
    width: float = 1.0
    meta: dict = field(default_factory=dict)


def load_network(path: str | Path, arch: str | None = None) -> EvalNet:
    """A vgg-repro checkpoint as an :class:`EvalNet`.

    The training scale and mean RGB come from the checkpoint's ``vgg_repro``
    entry (keys ``scale_min``, ``scale_max``, ``mean_rgb``) or, in a Lightning
    checkpoint, from the DataModule's saved arguments (``scale_min``,
    ``scale_max``, ``stats``); the mean RGB defaults to ImageNet's.

    Raises:
        CheckpointError: unreadable checkpoint, ``arch`` given and different, or
            a stats file recorded at training that cannot be read now.
    """
    ckpt = checkpoints.load_checkpoint(path)  # read once: weights and data arguments
    model, meta = checkpoints.model_from_loaded(ckpt, path, arch=arch)
    data_args = ckpt.get("datamodule_hyper_parameters") or {}

    def pick(key):  # the vgg_repro entry first, then the DataModule's arguments
        return meta[key] if meta.get(key) is not None else data_args.get(key)

    lo, hi, mean = pick("scale_min"), pick("scale_max"), meta.get("mean_rgb")
    train = (int(lo), int(hi if hi is not None else lo)) if lo is not None else None
    if mean is None:
        try:
            mean = D.load_stats(data_args.get("stats"))["mean_rgb"]
        except ConfigError as err:
            raise CheckpointError(
                f"{path} was trained with the mean RGB of {data_args.get('stats')}, which "
                f"cannot be read here ({err}); restore that file or evaluate where it exists"
            ) from None
    std = tuple(meta.get("std_rgb") or (1.0, 1.0, 1.0))
    classes = meta["classes"]
    return EvalNet(model, str(path), classes, tuple(mean), std, train, float(meta["width"]), meta)


def load_torchvision(name: str, weights: str | Path) -> EvalNet:
    """torchvision's ImageNet weights read from a local file (never downloaded).

    torchvision's nets expect ``(x / 255 - mean) / std`` with its published
    mean and std; that is expressed here in pixel units.
    """
    import torchvision

    model = models.from_torchvision(checkpoints.load_checkpoint(weights), name)
    tf = torchvision.models.VGG16_Weights.IMAGENET1K_V1.transforms()
    mean = tuple(255.0 * m for m in tf.mean)
    std = tuple(255.0 * s for s in tf.std)
    return EvalNet(model.eval(), f"torchvision:{name}:{weights}", None, mean, std, None, 1.0)


def resolve_scales(spec: str | Sequence[int], net: EvalNet) -> list[int]:
    """Test scales Q for a net: a preset (``"single"``, ``"multi"``) or explicit values.

    Presets follow Sec. 4.1-4.2. Jittered S in [S_min, S_max]: single
    ``(S_min+S_max)/2``, multi ``{S_min, mid, S_max}`` (384 and {256, 384, 512} in the
    paper). Fixed S: single ``S``, multi ``{S-d, S, S+d}`` with ``d = round(32 * crop/224)``:
    the paper's 32 (one stride of the conv stack), scaled with the crop size so that a
    miniature net's offset is the same fraction of its crop. (Scaling with S instead
    would give S=384 an offset of 48, unlike the paper.)

    Raises:
        ConfigError: a Q below the crop size, a malformed list, or a preset for a net
            whose training scale is unknown.
    """
    crop = net.model.crop_size
    if isinstance(spec, str) and spec in ("single", "multi"):
        if net.train_scale is None:
            raise ConfigError(
                f"{net.source} does not record its training scale S (scale_min/scale_max), "
                f"so the '{spec}' preset is undefined; give the test scales, e.g. --scales 256,384"
            )
        lo, hi = net.train_scale
        mid = (lo + hi) // 2
        step = round(SCALE_STEP * crop / PAPER_CROP)
        fixed = [lo - step, lo, lo + step] if spec == "multi" else [lo]
        scales = fixed if lo == hi else ([lo, mid, hi] if spec == "multi" else [mid])
    else:
        try:
            scales = [int(q) for q in (spec.split(",") if isinstance(spec, str) else spec)]
        except ValueError:
            raise ConfigError(
                f"test scales must be 'single', 'multi' or integers like 256,384,512; got {spec!r}"
            ) from None
    if not scales:
        raise ConfigError("no test scale given")
    small = [q for q in scales if q < crop]
    if small:
        raise ConfigError(
            f"test scale Q={small[0]} is smaller than the training crop size {crop} of "
            f"{net.source}: dense and multi-crop evaluation need Q >= {crop}"
        )
    return sorted(set(scales))


# --- the dataset loop ---------------------------------------------------------------------


def find_images(root: str | Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class folders (sorted) and (image path, class index) pairs of ``root/CLASS/*``."""
    root = Path(root)
    classes = D.class_folders(root)
    samples = [
        (str(p), i)
        for i, c in enumerate(classes)
        for p in sorted((root / c).iterdir())
        if p.is_file() and p.name.lower().endswith(D.IMAGE_EXTENSIONS)
    ]
    if not samples:
        raise DataError(
            f"data folder {root} has {len(classes)} class folders but no images "
            f"(looked for {', '.join(D.IMAGE_EXTENSIONS)})"
        )
    return classes, samples


def _class_order(net: EvalNet, classes: list[str]) -> list[int] | None:
    """Output index of each data class in the net, or None when the orders agree."""
    if net.classes is None:
        if net.model.num_classes != len(classes):
            raise DataError(
                f"{net.source} has {net.model.num_classes} classes but the data has "
                f"{len(classes)} class folders"
            )
        return None
    missing = sorted(set(net.classes) - set(classes))
    extra = sorted(set(classes) - set(net.classes))
    if missing or extra:
        raise DataError(
            f"the class folders do not match the classes of {net.source}: "
            f"{len(missing)} of its classes have no folder (first: {missing[:5]}), "
            f"{len(extra)} folders are not among its classes (first: {extra[:5]})"
        )
    order = [net.classes.index(c) for c in classes]
    return None if order == list(range(len(classes))) else order


class _Images(torch.utils.data.Dataset):
    """Each image decoded once and rescaled to every test scale, as uint8 tensors."""

    def __init__(self, samples: list[tuple[str, int]], scales: list[int]) -> None:
        self.samples, self.scales = samples, scales

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        image = load_image(path)
        return tuple(rescale(image, q) for q in self.scales), (label, i)


def _grouped(items, batch_size: int, max_buffered: int):
    """Batches of images whose rescaled sizes are all equal, in a bounded buffer.

    Grouping by size, not padding: padding changes the spatially averaged score
    map (padded positions get scores too) unless masked, and masking after five
    max-pools and a 7x7 FC6 must track partially padded positions; grouping needs
    no mask, and on ImageNet most images are 4:3 or 3:4, so batches stay full.
    """
    buckets: dict[tuple, list] = {}
    buffered = 0
    for tensors, label in items:
        key = tuple(t.shape for t in tensors)
        bucket = buckets.setdefault(key, [])
        bucket.append((tensors, label))
        buffered += 1
        if len(bucket) == batch_size or buffered > max_buffered:
            key = key if len(bucket) == batch_size else max(buckets, key=lambda k: len(buckets[k]))
            batch = buckets.pop(key)
            buffered -= len(batch)
            yield batch
    yield from buckets.values()


PRECISIONS = ("32", "bf16")


def eval_precision(device: str | torch.device, precision: str | None = None) -> str:
    """The arithmetic of evaluation: ``"bf16"`` (autocast, channels-last) or ``"32"``.

    By default the fast path on a GPU and full precision elsewhere, where bfloat16
    brings no speed:

    >>> eval_precision("cuda"), eval_precision("cpu"), eval_precision("cpu", "bf16")
    ('bf16', '32', 'bf16')
    """
    if precision is None:
        return "bf16" if torch.device(device).type == "cuda" else "32"
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def evaluate_folder(
    nets: Sequence[EvalNet | str | Path],
    root: str | Path,
    protocol: str = "dense",
    scales: str | Sequence[int] = "multi",
    *,
    batch_size: int = 16,
    workers: int = 0,
    device: str | torch.device = "cpu",
    crop_chunk: int = 256,
    progress: bool | None = None,
    precision: str | None = None,
    keep_posteriors: bool = False,
) -> dict:
    """Evaluate one net, or the fusion of several, on ``root/CLASS/IMAGE`` files.

    Args:
        nets: :class:`EvalNet` objects or checkpoint paths; several are fused (Table 6).
        root: the split's folder; its class folders must match each net's classes.
        protocol: ``"dense"``, ``"multi-crop"`` or ``"dense+multi-crop"``.
        scales: ``"single"``, ``"multi"`` (presets per net, see :func:`resolve_scales`),
            or a list of Q applied to every net.
        batch_size: images per forward pass (dense; doubled by the mirror images).
        workers: DataLoader processes for decoding and rescaling.
        device: where the nets run.
        crop_chunk: at most this many crops per forward pass in multi-crop.
        progress: tqdm bar with images/s; default: when stderr is a terminal.
        precision: ``"bf16"`` (bfloat16 autocast and channels-last tensors; the
            soft-max and the averaging stay in float32) or ``"32"``; default: bf16
            on CUDA (see :func:`eval_precision`).
        keep_posteriors: also return each image's posteriors (``"posteriors"``, a
            float32 ``(N, classes)`` tensor), ``"labels"`` and ``"files"`` (paths
            relative to ``root``), in :func:`find_images` order: what a later fusion
            needs without running the nets again.

    Returns:
        The metrics written by ``vgg-repro evaluate`` (see :mod:`vgg_repro.evaluate_cli`).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if not nets:
        raise ConfigError("no network to evaluate: give at least one checkpoint")
    nets = [n if isinstance(n, EvalNet) else load_network(n) for n in nets]
    classes, samples = find_images(root)
    device = torch.device(device)
    precision = eval_precision(device, precision)
    fast = precision == "bf16"
    layout = torch.channels_last if fast else torch.contiguous_format
    members, net_scales = [], []
    for net in nets:
        order = _class_order(net, classes)
        member = ScoreMapNet(net.model, net.mean_rgb, net.std_rgb, order)
        members.append(member.to(device, memory_format=layout).eval())
        net_scales.append(resolve_scales(scales, net))
    all_scales = sorted({q for qs in net_scales for q in qs})
    run = PROTOCOLS[protocol]
    if protocol != "dense":
        run = partial(run, chunk=crop_chunk)
    # One image per item: the batches are formed by size in _grouped, on the fly.
    loader = torch.utils.data.DataLoader(
        _Images(samples, all_scales),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=max(2, batch_size) if workers else None,
    )
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(samples), unit="img", disable=not show, desc=f"{protocol} evaluation")
    n_classes = len(classes)
    top1 = torch.zeros(n_classes, dtype=torch.long)
    top5 = torch.zeros(n_classes, dtype=torch.long)
    seen = torch.zeros(n_classes, dtype=torch.long)
    kept = torch.zeros(len(samples), n_classes) if keep_posteriors else None
    start = time.perf_counter()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast)
    with torch.inference_mode(), autocast:
        for batch in _grouped(loader, batch_size, max_buffered=16 * batch_size):
            stacked = [
                torch.stack(t).to(device, memory_format=layout)
                for t in zip(*[ts for ts, _ in batch], strict=True)
            ]
            images = dict(zip(all_scales, stacked, strict=True))
            labels = torch.tensor([label for _, (label, _) in batch])
            # Sec. 4.4: fusion averages the nets' posteriors, each net at its own scales.
            per_net = [
                multi_scale(m, [images[q] for q in qs], run)
                for m, qs in zip(members, net_scales, strict=True)
            ]
            posteriors = torch.stack(per_net).mean(0).cpu()
            if kept is not None:
                kept[[i for _, (_, i) in batch]] = posteriors.float()
            seen += torch.bincount(labels, minlength=n_classes)
            top1 += torch.bincount(labels[topk_correct(posteriors, labels, 1)], minlength=n_classes)
            top5 += torch.bincount(labels[topk_correct(posteriors, labels, 5)], minlength=n_classes)
            bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - start
    n = int(seen.sum())
    result = {
        "top1_error": 100.0 * (1 - int(top1.sum()) / n),
        "top5_error": 100.0 * (1 - int(top5.sum()) / n),
        "n_images": n,
        "num_classes": n_classes,
        "protocol": protocol,
        "scales": all_scales,
        "checkpoints": [
            {
                "path": net.source,
                "arch": net.model.name,
                "width": net.width,
                "crop_size": net.model.crop_size,
                "train_scale": list(net.train_scale) if net.train_scale else None,
                "test_scales": qs,
                "mean_rgb": list(net.mean_rgb),
                "std_rgb": list(net.std_rgb),
            }
            for net, qs in zip(nets, net_scales, strict=True)
        ],
        "per_class_accuracy": {
            c: (100.0 * int(top1[i]) / int(seen[i]) if seen[i] else None)
            for i, c in enumerate(classes)
        },
        "images_per_second": n / max(seconds, 1e-9),
        "seconds": seconds,
        "device": str(device),
        "precision": precision,
        "data": str(root),
    }
    if kept is not None:
        result["posteriors"] = kept
        result["labels"] = torch.tensor([label for _, label in samples])
        result["files"] = [Path(path).relative_to(root).as_posix() for path, _ in samples]
    return result


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro evaluate``: print the paper-format table, optionally write the metrics JSON."""
    parser = argparse.ArgumentParser(
        prog="vgg-repro evaluate",
        description="Top-1/top-5 error of one net, or the fusion of several, with the "
        "paper's test protocols (Sec. 3.2), printed in the layout of Tables 3 to 6.",
    )
    parser.add_argument(
        "--ckpt",
        action="append",
        default=[],
        metavar="PATH",
        help="a vgg-repro checkpoint; repeat to fuse several nets (Table 6)",
    )
    parser.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="NAME",
        help="configuration each --ckpt must hold (once for all, or once per "
        "--ckpt); an error if a checkpoint holds another",
    )
    parser.add_argument(
        "--torchvision",
        metavar="NAME",
        help="also/instead evaluate torchvision's ImageNet weights for vgg11, "
        "vgg13, vgg16 or vgg19, read from --weights (nothing is downloaded)",
    )
    parser.add_argument("--weights", metavar="FILE", help="torchvision state dict (.pth)")
    parser.add_argument(
        "--data",
        required=True,
        metavar="ROOT",
        help="the split to evaluate, as ROOT/CLASS/IMAGE (e.g. imagenet/val)",
    )
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="dense",
        help="dense (Sec. 3.2), multi-crop (50 crops per scale) or both averaged",
    )
    parser.add_argument(
        "--scales",
        default="multi",
        metavar="single|multi|Q,Q,...",
        help="test scales Q: 'single' (Q=S; 384 for S in [256;512]), 'multi' "
        "({S-32,S,S+32}; {256,384,512}), both read from the checkpoint's "
        "training scale, or explicit values such as 256,384,512 (default: multi)",
    )
    parser.add_argument("--output", metavar="JSON", help="write the metrics here")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="images per forward pass (default 16; dense doubles it with flips)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="processes decoding and rescaling images",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: auto)")
    parser.add_argument(
        "--paper-numbers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print the paper's numbers beside ours (default: on 1000 classes)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="bf16: bfloat16 autocast and channels-last, the default on a GPU; "
        "32: full precision, the default on a CPU",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if not args.ckpt and not args.torchvision:
        raise ConfigError(
            "nothing to evaluate: give --ckpt PATH or --torchvision NAME --weights FILE"
        )
    if bool(args.torchvision) != bool(args.weights):
        raise ConfigError("--torchvision NAME and --weights FILE go together")
    if args.arch and len(args.arch) not in (1, len(args.ckpt)):
        raise ConfigError(
            f"give --arch once (for every --ckpt) or once per --ckpt; got {len(args.arch)} "
            f"--arch for {len(args.ckpt)} --ckpt"
        )
    if args.batch_size < 1 or args.workers < 0:
        raise ConfigError("--batch-size must be >= 1 and --workers >= 0")
    archs = args.arch if len(args.arch) > 1 else (args.arch or [None]) * len(args.ckpt)
    nets = [load_network(p, a) for p, a in zip(args.ckpt, archs, strict=True)]
    if args.torchvision:
        nets.append(load_torchvision(args.torchvision, args.weights))
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    metrics = evaluate_folder(
        nets,
        args.data,
        args.protocol,
        args.scales,
        batch_size=args.batch_size,
        workers=args.workers,
        device=device,
        progress=False if args.quiet else None,
        precision=args.precision,
    )
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        os.replace(tmp, out)
    print(render_table([metrics], paper_numbers=args.paper_numbers))
    print(
        f"\n{metrics['n_images']} images, {metrics['num_classes']} classes, "
        f"{metrics['images_per_second']:.1f} images/s on {metrics['device']}"
        + (f"; metrics written to {args.output}" if args.output else "")
    )
    return 0
