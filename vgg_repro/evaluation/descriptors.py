"""The image descriptors of Appendix B: a trained net as a fixed feature extractor.

The net without its last FC layer is applied densely to the whole image rescaled
to shorter side Q; the map of FC7 activations (4096 channels after their ReLU in
the paper, ``4096 x width`` here) is averaged over its positions, and averaged
with that of the mirror image. The descriptors of the test scales Q are stacked
(concatenated) or averaged, then L2-normalised. The descriptors of several nets
are concatenated ("Net-D & Net-E", Table 11).

- :func:`describe_at_scale`: one batch of images of one size -> ``(N, D)``, the
  flip included (a pure function of ``(net, images)``, like the test protocols);
- :func:`aggregate`: the per-scale descriptors stacked or averaged, then L2-normalised;
- :func:`describe`: a list of images of any sizes at several scales -> ``(N, D)``;
- :func:`describe_folder`: every image of ``ROOT/CLASS/IMAGE``, for several nets;
- :func:`pixel_descriptor`: a non-learned baseline, the raw pixels of the centre crop;
- :func:`save_features`, :func:`load_features`: ``FILE.npy`` and its file list.

Choices where Appendix B leaves room: each net's descriptor is L2-normalised
before the concatenation, so that both nets weigh the same; the concatenation
is not normalised again (its norm is the number of nets' square root).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from vgg_repro import checkpoints, models
from vgg_repro.data import transforms as T
from vgg_repro.data.images import load_image, to_rgb
from vgg_repro.errors import CheckpointError, ConfigError, DataError
from vgg_repro.evaluation.networks import EvalNet, load_network, load_torchvision
from vgg_repro.evaluation.protocols import rescale, rescaled_size
from vgg_repro.files import atomic_write, write_json

__all__ = [
    "AGGREGATIONS",
    "FeatureMapNet",
    "aggregate",
    "describe",
    "describe_at_scale",
    "describe_folder",
    "l2_normalise",
    "load_descriptor_net",
    "load_features",
    "pixel_descriptor",
    "save_features",
]

# Appendix B: for VOC the descriptors of the three scales are averaged, for Caltech
# stacked (stacking did better there; on VOC the two did about as well).
AGGREGATIONS = ("stack", "average")


# As in evaluation (vgg_repro.evaluation.runner): channels-last tensors on every device,
# faster on a CPU's oneDNN too.
CHANNELS_LAST = torch.channels_last


class FeatureMapNet(nn.Module):
    """A net's dense form up to FC7 behind its input normalisation.

    Raw RGB (0-255) in, the FC7 activation map ``(N, D, h, w)`` out: FC6 as a
    ``k x k`` convolution and FC7 as a 1x1 one (:func:`vgg_repro.models.to_dense`),
    each followed by its ReLU; the last FC layer (the classifier) is left out.
    """

    def __init__(self, model: models.VGG, mean_rgb, std_rgb=(1.0, 1.0, 1.0)) -> None:
        super().__init__()
        dense = models.to_dense(model)
        # to_dense's head: FC6, ReLU, dropout, FC7, ReLU, dropout, FC8.
        self.features = dense.features
        self.head = dense.head[:5]
        self.crop_size = model.crop_size
        self.width = dense.head[3].out_channels
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std_rgb, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """FC7 activation map of raw 0-255 RGB images ``(N, 3, H, W)``."""
        return self.head(self.features((images.float() - self.mean) / self.std))


def describe_at_scale(net: nn.Module, images: torch.Tensor, *, flip: bool = True) -> torch.Tensor:
    """The descriptor of a batch of images of one size at their scale (Appendix B).

    The activation map is averaged over its positions ("global average pooling");
    with ``flip`` the same is done for the mirror images and the two are averaged.

    Args:
        net: maps ``(N, 3, H, W)`` to an activation map ``(N, D, h, w)``
            (a :class:`FeatureMapNet`).
        images: ``(N, 3, H, W)``, as ``net`` expects them.
        flip: also describe the mirror images (the paper does).

    Returns:
        ``(N, D)`` float32, not normalised.
    """
    crop = getattr(net, "crop_size", None)
    if crop is not None and min(images.shape[-2:]) < crop:
        h, w = images.shape[-2:]
        raise ConfigError(
            f"images of {h}x{w} pixels are smaller than the training crop size {crop}: "
            f"choose scales Q >= {crop}"
        )
    if not flip:
        return net(images).mean(dim=(2, 3)).float()
    n = images.shape[0]
    pooled = net(torch.cat([images, images.flip(-1)])).mean(dim=(2, 3)).float()
    return (pooled[:n] + pooled[n:]) / 2


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its Euclidean norm (a zero row stays zero).

    >>> l2_normalise(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def aggregate(per_scale: Sequence[torch.Tensor], how: str = "stack") -> torch.Tensor:
    """The descriptors of several scales as one, L2-normalised (Appendix B).

    ``"stack"`` concatenates them (``(N, D x scales)``, Caltech), ``"average"``
    averages them (``(N, D)``, VOC).

    >>> a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    >>> aggregate([a, b], "stack"), aggregate([a, b], "average")
    (tensor([[0.7071, 0.0000, 0.0000, 0.7071]]), tensor([[0.7071, 0.7071]]))
    """
    if how not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}")
    if not per_scale:
        raise ConfigError("no scale to describe: give at least one Q")
    joined = (
        torch.cat(list(per_scale), 1) if how == "stack" else torch.stack(list(per_scale)).mean(0)
    )
    return l2_normalise(joined)


def _check_scales(scales: Sequence[int], crop: int) -> list[int]:
    scales = [int(q) for q in scales]
    if not scales:
        raise ConfigError("no scale to describe: give at least one Q")
    low = [q for q in scales if q < crop]
    if low:
        raise ConfigError(
            f"scale Q = {low[0]} is below the crop size {crop} of the net: the descriptor "
            f"needs Q >= {crop} (Appendix B uses 256, 384, 512 for 224 crops)"
        )
    return scales


def _feature_net(net: EvalNet | FeatureMapNet) -> FeatureMapNet:
    if isinstance(net, FeatureMapNet):
        return net
    return FeatureMapNet(net.model, net.mean_rgb, net.std_rgb).eval()


def describe(
    net: EvalNet | FeatureMapNet,
    images: Sequence[Image.Image | str | os.PathLike],
    scales: Sequence[int],
    *,
    aggregation: str = "stack",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Descriptors of images of any sizes (Appendix B), ``(N, D)`` float32.

    Args:
        net: an :class:`~vgg_repro.evaluation.networks.EvalNet` (from a checkpoint or
            torchvision's weights: :func:`load_descriptor_net`) or a :class:`FeatureMapNet`.
        images: PIL images or image files.
        scales: the test scales Q (the paper's 256, 384, 512 for 224 crops).
        aggregation: ``"stack"`` or ``"average"`` over the scales (:func:`aggregate`).
        batch_size: images per forward pass (images of the same rescaled size).
        device: where the net runs.

    Returns:
        One L2-normalised row per image, in the order given.
    """
    feature_net = _feature_net(net).to(device, memory_format=CHANNELS_LAST)
    scales = _check_scales(scales, feature_net.crop_size)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = [
                to_rgb(im) if isinstance(im, Image.Image) else load_image(im)
                for im in images[start : start + batch_size]
            ]
            per_scale = [_describe_group(feature_net, [rescale(im, q) for im in chunk], device)
                         for q in scales]  # fmt: skip
            out.append(aggregate(per_scale, aggregation))
    if not out:
        raise DataError("no images to describe")
    return torch.cat(out).cpu()


def _describe_group(net: FeatureMapNet, tensors: list[torch.Tensor], device) -> torch.Tensor:
    """:func:`describe_at_scale` of tensors of possibly different sizes, in their order."""
    by_size: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        by_size.setdefault(tuple(t.shape), []).append(i)
    result = torch.empty(len(tensors), net.width)
    for index in by_size.values():
        batch = torch.stack([tensors[i] for i in index]).to(device, memory_format=CHANNELS_LAST)
        result[index] = describe_at_scale(net, batch).cpu()
    return result


def _image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header; ``(0, 0)`` if unreadable
    (load_image reports the file when it is read)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError):
        return 0, 0
    return h, w


def _rescaled(shape: tuple[int, int], q: int) -> tuple[int, int]:
    return rescaled_size(*shape, q) if min(shape) > 0 else (0, 0)


def describe_folder(
    nets: Sequence[EvalNet | FeatureMapNet],
    root: str | os.PathLike,
    scales: Sequence[int],
    *,
    aggregation: str = "stack",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> dict:
    """Descriptors of every image of ``root/CLASS/IMAGE`` by one net or several.

    Each image is decoded once per scale; the descriptors of several nets are concatenated
    (Table 11's "Net-D & Net-E"), each L2-normalised first.

    Returns:
        ``features`` (``(N, D)`` float32 numpy), ``files`` (``CLASS/IMAGE``, relative
        to ``root``), ``labels`` (class index per row), ``classes`` (sorted folders).
    """
    from vgg_repro.evaluation.runner import find_images

    if not nets:
        raise ConfigError("no network to describe with: give at least one checkpoint")
    classes, samples = find_images(root)
    feature_nets = [_feature_net(n).to(device, memory_format=CHANNELS_LAST) for n in nets]
    for f in feature_nets:
        scales = _check_scales(scales, f.crop_size)
    # Images of one rescaled size share a forward pass: at each scale they are taken
    # in the order of that size (read from the files' headers), so that a chunk holds
    # as few sizes as the data allows. On data/transfer that makes 3.6 (train) and 5.5
    # (test) images per pass, where chunks in the folder's order made 1.6 (counted).
    # Each image is decoded once per scale.
    shapes = [_image_size(path) for path, _ in samples]
    per_scale = {q: [torch.empty(len(samples), f.width) for f in feature_nets] for q in scales}
    with torch.inference_mode():
        for q in scales:
            order = sorted(range(len(samples)), key=lambda i: _rescaled(shapes[i], q))
            for start in range(0, len(samples), batch_size):
                index = order[start : start + batch_size]
                images = [rescale(load_image(samples[i][0]), q) for i in index]
                for f, out in zip(feature_nets, per_scale[q], strict=True):
                    out[index] = _describe_group(f, images, device)
    rows = torch.cat(
        [
            aggregate([per_scale[q][k] for q in scales], aggregation)
            for k in range(len(feature_nets))
        ],
        1,
    )
    root = Path(root)
    return {
        "features": rows.numpy().astype(np.float32),
        "files": [Path(p).relative_to(root).as_posix() for p, _ in samples],
        "labels": [label for _, label in samples],
        "classes": classes,
    }


def pixel_descriptor(image: Image.Image, crop_size: int) -> np.ndarray:
    """A non-learned baseline: the centre crop's raw pixels, L2-normalised.

    The image is rescaled to shorter side ``crop_size`` and centre-cropped, so that
    it is what a net's training crop sees; its RGB values minus their mean are the
    descriptor (``3 x crop_size^2``).

    >>> d = pixel_descriptor(Image.new("RGB", (64, 48), (10, 20, 30)), 32)
    >>> d.shape, round(float(np.linalg.norm(d)), 6)
    ((3072,), 1.0)
    >>> float(np.abs(pixel_descriptor(Image.new("RGB", (64, 48), (9, 9, 9)), 32)).max())
    0.0
    """
    crop = T.center_crop(T.isotropic_rescale(to_rgb(image), crop_size), crop_size)
    x = np.asarray(crop, dtype=np.float32).ravel()
    x = x - x.mean()
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 0 else x


# --- loading nets and feature files -------------------------------------------------------


def load_descriptor_net(
    path: str | os.PathLike, *, torchvision: str | None = None, arch: str | None = None
) -> EvalNet:
    """A net to describe images with: a pipeline ``model.pt``, a Lightning checkpoint,
    or torchvision's ImageNet weights read from a local file (``torchvision="vgg16"``).

    Raises:
        CheckpointError: the file holds no FC layers (the descriptor is FC7's
            activations), or cannot be read as a net.
    """
    ckpt = checkpoints.load_checkpoint(path)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    keys = {k.removeprefix("net.") for k in state} if isinstance(state, dict) else set()
    if not {"classifier.0.weight", "classifier.3.weight"} <= keys:
        raise CheckpointError(
            f"{path} has no FC layers (no classifier.0 and classifier.3 weights): the "
            "Appendix B descriptor is the FC7 activation, so give a checkpoint of the "
            "whole net (a vgg-repro model.pt or .ckpt, or torchvision's vggNN weights)"
        )
    if torchvision:
        return load_torchvision(torchvision, path)
    return load_network(path, arch)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_features(path: str | os.PathLike, described: dict, **meta) -> Path:
    """Write ``FILE.npy`` (the descriptors) and ``FILE.json`` (files, labels, classes, meta).

    Both are written atomically; the JSON is written last, so a reader that finds
    it finds the matching ``.npy``.
    """
    path = Path(path)
    if path.suffix != ".npy":
        raise ConfigError(f"--out {path}: the descriptors are written as FILE.npy; end it in .npy")
    with atomic_write(path, binary=True) as f:
        np.save(f, np.asarray(described["features"], dtype=np.float32))
    info = {k: described[k] for k in ("files", "labels", "classes")} | meta
    write_json(_sidecar(path), info, indent=1, sort_keys=False)
    return path


def load_features(path: str | os.PathLike) -> dict:
    """Read what :func:`save_features` wrote; the rows must match the file list.

    Raises:
        DataError: a missing or unreadable file, or a different number of rows
            in ``FILE.npy`` and files in ``FILE.json``.
    """
    path = Path(path)
    side = _sidecar(path)
    for p in (path, side):
        if not p.is_file():
            raise DataError(f"{p} not found: write it with `vgg-repro features --out {path}`")
    try:
        features = np.load(path, allow_pickle=False)
        info = json.loads(side.read_text())
    except (ValueError, OSError) as err:
        raise DataError(f"cannot read the descriptors {path}: {err}") from None
    files = info.get("files") if isinstance(info, dict) else None
    if not isinstance(files, list) or features.ndim != 2 or len(files) != features.shape[0]:
        rows = features.shape[0] if features.ndim else 0
        raise DataError(
            f"{path} has {rows} rows but {side} lists "
            f"{len(files) if isinstance(files, list) else 'no'} files: they were not "
            f"written together; write both again with `vgg-repro features --out {path}`"
        )
    return info | {"features": features}
