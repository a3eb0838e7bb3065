"""One pass over a folder of images for every protocol of the paper's testing (Sec. 3.2).

:func:`evaluate_protocols` runs the pure protocols of
:mod:`vgg_repro.evaluation.protocols` over ``ROOT/CLASS/IMAGE`` files: each image is
decoded once and rescaled once per test scale Q; at each scale a net's dense and
multi-crop posteriors are computed once, and every protocol asked for (single- and
multi-scale dense, multi-crop, dense+multi-crop, the fusion of several nets) is an
average of them. :func:`evaluate_folder` is the same for one protocol.

The metrics (one dict per protocol; what ``vgg-repro evaluate --output`` writes):
``top1_error``, ``top5_error`` (percent), ``n_images``, ``num_classes``,
``protocol``, ``scales`` (every Q used), ``checkpoints`` (per net: ``path``,
``arch``, ``width``, ``crop_size``, ``train_scale``, ``test_scales``,
``mean_rgb``, ``std_rgb``), ``per_class_accuracy`` (class folder -> top-1 accuracy in
percent), ``images_per_second``, ``seconds`` (of the whole pass), ``device``,
``precision``, ``data``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from vgg_repro.data.folders import IMAGE_EXTENSIONS, class_folders
from vgg_repro.data.images import load_image
from vgg_repro.errors import ConfigError, DataError
from vgg_repro.evaluation.networks import EvalNet, load_network
from vgg_repro.evaluation.protocols import (
    PROTOCOLS,
    ScoreMapNet,
    average_posteriors,
    dense_evaluate,
    multi_crop,
    rescale,
    topk_correct,
)
from vgg_repro.evaluation.scales import resolve_scales

__all__ = ["PRECISIONS", "eval_precision", "evaluate_folder", "evaluate_protocols", "find_images"]


def find_images(root: str | Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class folders (sorted) and (image path, class index) pairs of ``root/CLASS/*``."""
    root = Path(root)
    classes = class_folders(root)
    samples = [
        (str(p), i)
        for i, c in enumerate(classes)
        for p in sorted((root / c).iterdir())
        if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    if not samples:
        raise DataError(
            f"data folder {root} has {len(classes)} class folders but no images "
            f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return classes, samples


def _class_order(net: EvalNet, classes: list[str]) -> list[int] | None:
    """Output index of each data class in the net, or None when the orders agree.

    A data folder with a subset of the net's classes (10 of ImageNet's 1000, say)
    maps to their outputs: the soft-max is then over those classes only, and a
    line on stderr says so.
    """
    if net.classes is None:
        if net.model.num_classes != len(classes):
            raise DataError(
                f"{net.source} has {net.model.num_classes} classes but the data has "
                f"{len(classes)} class folders; for a subset of its classes, give their "
                "names in the weights' order (evaluate --classes FILE, or ImageNet's train "
                "folder)"
            )
        return None
    extra = sorted(set(classes) - set(net.classes))
    if extra:
        raise DataError(
            f"the class folders do not match the classes of {net.source}: "
            f"{len(extra)} folders are not among its {len(net.classes)} classes "
            f"(first: {extra[:5]})"
        )
    index = {c: i for i, c in enumerate(net.classes)}
    order = [index[c] for c in classes]
    if len(classes) < len(net.classes):
        print(
            f"{net.source}: the data has {len(classes)} of its {len(net.classes)} classes; "
            f"its soft-max is restricted to those {len(classes)}",
            file=sys.stderr,
        )
    return None if order == list(range(len(net.classes))) else order


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
    """The arithmetic of evaluation: ``"bf16"`` (autocast) or ``"32"``.

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


# Which per-scale posteriors each protocol averages (Sec. 3.2, Table 5).
_NEEDS = {"dense": ("dense",), "multi-crop": ("crops",), "dense+multi-crop": ("dense", "crops")}


def evaluate_protocols(
    nets: Sequence[EvalNet | str | Path],
    root: str | Path,
    settings: Mapping[str, tuple[str, str | Sequence[int]]],
    *,
    batch_size: int = 16,
    workers: int = 0,
    device: str | torch.device = "cpu",
    crop_chunk: int = 256,
    progress: bool | None = None,
    precision: str | None = None,
    keep_posteriors: bool = False,
) -> dict[str, dict]:
    """Evaluate one net, or the fusion of several, with several protocols in one pass.

    Args:
        nets: :class:`~vgg_repro.evaluation.networks.EvalNet` objects or checkpoint
            paths; several are fused (Table 6), each at its own test scales.
        root: the split's folder; its class folders must match each net's classes.
        settings: name -> ``(protocol, scales)``: the protocol (``"dense"``,
            ``"multi-crop"``, ``"dense+multi-crop"``) and its test scales
            (``"single"``, ``"multi"``: presets per net, see
            :func:`~vgg_repro.evaluation.scales.resolve_scales`; or a list of Q).
        batch_size: images per forward pass (dense; doubled by the mirror images).
        workers: DataLoader processes for decoding and rescaling.
        device: where the nets run.
        crop_chunk: at most this many crops per forward pass in multi-crop.
        progress: tqdm bar with images/s; default: when stderr is a terminal.
        precision: ``"bf16"`` (bfloat16 autocast; the soft-max and the averaging
            stay in float32) or ``"32"``; default: bf16 on CUDA (see
            :func:`eval_precision`). Tensors are channels-last in both.
        keep_posteriors: also return each image's posteriors (``"posteriors"``, a
            float32 ``(N, classes)`` tensor), ``"labels"`` and ``"files"`` (paths
            relative to ``root``), in :func:`find_images` order: what a later fusion
            needs without running the nets again.

    Returns:
        name -> the metrics of that setting (see the module's docstring).
    """
    for name, (protocol, _) in settings.items():
        if protocol not in PROTOCOLS:
            raise ConfigError(
                f"unknown protocol {protocol!r} ({name}); choose one of {', '.join(PROTOCOLS)}"
            )
    if not settings:
        raise ConfigError("no protocol to evaluate")
    if not nets:
        raise ConfigError("no network to evaluate: give at least one checkpoint")
    nets = [n if isinstance(n, EvalNet) else load_network(n) for n in nets]
    classes, samples = find_images(root)
    device = torch.device(device)
    precision = eval_precision(device, precision)
    fast = precision == "bf16"
    # Channels-last on every device: on a CPU too, oneDNN's convolutions and max-pools
    # ran the dense form of D (width 1/16) 1.5 to 1.7 times faster than on contiguous
    # tensors (measured), for results that differ by about 1e-7.
    layout = torch.channels_last
    members = []
    for net in nets:
        member = ScoreMapNet(net.model, net.mean_rgb, net.std_rgb, _class_order(net, classes))
        members.append(member.to(device, memory_format=layout).eval())
    # name -> per net, its test scales; and per net, the scales each kind of pass needs.
    scales = {k: [resolve_scales(s, net) for net in nets] for k, (_, s) in settings.items()}
    needed: list[dict[str, set[int]]] = [{"dense": set(), "crops": set()} for _ in nets]
    for name, (protocol, _) in settings.items():
        for i, qs in enumerate(scales[name]):
            for kind in _NEEDS[protocol]:
                needed[i][kind].update(qs)
    all_scales = sorted({q for per_net in scales.values() for qs in per_net for q in qs})
    # One image per item: the batches are formed by size in _grouped, on the fly.
    loader = torch.utils.data.DataLoader(
        _Images(samples, all_scales),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=max(2, batch_size) if workers else None,
    )
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    names = ", ".join(dict.fromkeys(p for p, _ in settings.values()))
    bar = tqdm(total=len(samples), unit="img", disable=not show, desc=f"{names} evaluation")
    n_classes = len(classes)
    counts = {k: torch.zeros(3, n_classes, dtype=torch.long) for k in settings}  # top1, top5, n
    kept = {k: torch.zeros(len(samples), n_classes) for k in settings} if keep_posteriors else None
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
            index = [i for _, (_, i) in batch]
            # Each net's posteriors at each scale, once, whatever the protocols.
            passes = [
                {
                    "dense": {q: dense_evaluate(m, images[q]) for q in sorted(need["dense"])},
                    "crops": {
                        q: multi_crop(m, images[q], chunk=crop_chunk) for q in sorted(need["crops"])
                    },
                }
                for m, need in zip(members, needed, strict=True)
            ]
            for name, (protocol, _) in settings.items():
                # Sec. 4.2: a multi-scale result averages the scales; Sec. 4.4: fusion
                # averages the nets' posteriors, each net at its own scales.
                per_net = [
                    average_posteriors([_at_scale(protocol, done, q) for q in qs])
                    for done, qs in zip(passes, scales[name], strict=True)
                ]
                posteriors = average_posteriors(per_net).cpu()
                if kept is not None:
                    kept[name][index] = posteriors.float()
                c = counts[name]
                c[2] += torch.bincount(labels, minlength=n_classes)
                for row, k in ((0, 1), (1, 5)):
                    hits = labels[topk_correct(posteriors, labels, k)]
                    c[row] += torch.bincount(hits, minlength=n_classes)
            bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - start
    out = {}
    for name, (protocol, _) in settings.items():
        top1, top5, seen = counts[name]
        n = int(seen.sum())
        net_scales = scales[name]
        result = {
            "top1_error": 100.0 * (1 - int(top1.sum()) / n),
            "top5_error": 100.0 * (1 - int(top5.sum()) / n),
            "n_images": n,
            "num_classes": n_classes,
            "protocol": protocol,
            "scales": sorted({q for qs in net_scales for q in qs}),
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
            result["posteriors"] = kept[name]
            result["labels"] = torch.tensor([label for _, label in samples])
            result["files"] = [Path(path).relative_to(root).as_posix() for path, _ in samples]
        out[name] = result
    return out


def _at_scale(protocol: str, done: dict[str, dict[int, torch.Tensor]], q: int) -> torch.Tensor:
    """A protocol's posteriors at one scale from the passes already made."""
    if protocol == "dense":
        return done["dense"][q]
    if protocol == "multi-crop":
        return done["crops"][q]
    return (done["dense"][q] + done["crops"][q]) / 2  # Table 5: multi-crop & dense


def evaluate_folder(
    nets: Sequence[EvalNet | str | Path],
    root: str | Path,
    protocol: str = "dense",
    scales: str | Sequence[int] = "multi",
    **kwargs,
) -> dict:
    """Evaluate one net, or the fusion of several, with one protocol on ``root/CLASS/IMAGE``.

    Args:
        nets: :class:`~vgg_repro.evaluation.networks.EvalNet` objects or checkpoint
            paths; several are fused (Table 6).
        root: the split's folder; its class folders must match each net's classes.
        protocol: ``"dense"``, ``"multi-crop"`` or ``"dense+multi-crop"``.
        scales: ``"single"``, ``"multi"`` (presets per net) or a list of Q applied to
            every net.
        **kwargs: as for :func:`evaluate_protocols` (``batch_size``, ``workers``,
            ``device``, ``crop_chunk``, ``progress``, ``precision``, ``keep_posteriors``).

    Returns:
        The metrics written by ``vgg-repro evaluate`` (see the module's docstring).
    """
    return evaluate_protocols(nets, root, {protocol: (protocol, scales)}, **kwargs)[protocol]
