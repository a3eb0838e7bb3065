"""The test protocols of Sec. 3.2 as pure functions: dense, multi-crop, scales, fusion.

The protocols are pure functions of ``(net, images) -> posteriors``: ``images``
is one batch ``(N, 3, H, W)`` of images of one size, ``net`` any module mapping
images to a class score map ``(N, C, h, w)`` (a :class:`~vgg_repro.models.DenseVGG`,
or a :class:`ScoreMapNet`, which adds the input normalisation), and the result
is soft-max posteriors ``(N, C)``:

- :func:`dense_evaluate`: the whole image, score map averaged, plus its mirror image;
- :func:`multi_crop`: a 5x5 grid of crops and their mirror images, 50 per scale;
- :func:`dense_and_multi_crop`: the average of the two (Table 5);
- :func:`multi_scale`: the average over test scales Q (Table 4);
- :func:`fusion`: the average over several nets (Table 6);
- :func:`average_posteriors`: the one averaging rule that the last three use, and
  that the runner and the pipeline's fusion of saved posteriors use too;
- :func:`topk_error`: top-1 / top-5 error in percent.

:func:`~vgg_repro.evaluation.runner.evaluate_protocols` runs them over a folder of
class subfolders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch import nn

from vgg_repro import models
from vgg_repro.data import transforms as T
from vgg_repro.errors import ConfigError

__all__ = [
    "PROTOCOLS",
    "ScoreMapNet",
    "average_posteriors",
    "crop_grid",
    "dense_and_multi_crop",
    "dense_evaluate",
    "fusion",
    "multi_crop",
    "multi_scale",
    "preprocess",
    "rescale",
    "rescaled_size",
    "topk_correct",
    "topk_error",
]

GRID = 5  # Sec. 4.3: "50 crops per scale (5x5 regular grid with 2 flips)"


# --- protocols: (net, images of one size) -> soft-max posteriors (N, C) -----------------


def _scores(net: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Class scores (N, C): the score map spatially averaged ("sum-pooled", Sec. 3.2)."""
    out = net(images)
    return (out.mean(dim=(2, 3)) if out.dim() == 4 else out).float()


def _check_size(net: object, images: torch.Tensor, crop_size: int | None = None) -> int | None:
    crop = crop_size or getattr(net, "crop_size", None)
    h, w = images.shape[-2:]
    if crop is not None and min(h, w) < crop:
        raise ConfigError(
            f"images of {h}x{w} pixels are smaller than the training crop size {crop}: "
            f"choose test scales Q >= {crop}"
        )
    return crop


def dense_evaluate(net: nn.Module, images: torch.Tensor, *, flip: bool = True) -> torch.Tensor:
    """Dense evaluation (Sec. 3.2): the net applied to the whole, uncropped image.

    The class score map is averaged spatially and turned into soft-max
    posteriors; with ``flip`` the same is done for the horizontally mirrored
    image and the two posteriors are averaged.

    Args:
        net: maps ``(N, 3, H, W)`` to a score map ``(N, C, h, w)``; a
            :class:`~vgg_repro.models.VGG` is converted with ``to_dense``
            (a copy of the FC weights on every call: convert once for loops).
        images: ``(N, 3, H, W)``, normalised as the net expects.
        flip: also evaluate the mirror images (the paper does).

    Returns:
        Posteriors ``(N, C)`` in float32.
    """
    net = models.to_dense(net) if isinstance(net, models.VGG) else net
    _check_size(net, images)
    if not flip:
        return _scores(net, images).softmax(1)
    n = images.shape[0]
    # One forward pass over image and mirror image: twice the batch, half the calls.
    scores = _scores(net, torch.cat([images, images.flip(-1)]))
    return (scores[:n].softmax(1) + scores[n:].softmax(1)) / 2


def crop_grid(height: int, width: int, crop: int, grid: int = GRID) -> list[tuple[int, int]]:
    """Top-left corners of a regular ``grid x grid`` set of ``crop`` squares (Sec. 4.3).

    Positions are evenly spaced from the top-left to the bottom-right corner,
    both included (rounded down); the middle one (odd ``grid``) is the centre
    crop of :func:`vgg_repro.data.transforms.center_crop`.

    >>> crop_grid(256, 320, 224, grid=3)
    [(0, 0), (0, 48), (0, 96), (16, 0), (16, 48), (16, 96), (32, 0), (32, 48), (32, 96)]
    """
    if min(height, width) < crop:
        raise ConfigError(f"a {crop}x{crop} crop does not fit in a {height}x{width} image")

    def offsets(length: int) -> list[int]:
        return [i * (length - crop) // max(grid - 1, 1) for i in range(grid)]

    return [(top, left) for top in offsets(height) for left in offsets(width)]


def multi_crop(
    net: nn.Module,
    images: torch.Tensor,
    *,
    crop_size: int | None = None,
    grid: int = GRID,
    flip: bool = True,
    chunk: int | None = None,
) -> torch.Tensor:
    """Multi-crop evaluation (Sec. 3.2, 4.3): 5x5 crops and their mirror images.

    Each of the ``grid**2`` crops (and, with ``flip``, its mirror image: 50 in
    all) is classified on its own; the soft-max posteriors are averaged.

    Args:
        net: as for :func:`dense_evaluate`; at the crop size its score map is 1x1.
        images: ``(N, 3, H, W)`` with ``H, W >= crop_size``.
        crop_size: crop side; defaults to ``net.crop_size`` (the training crop).
        grid: positions per side (5 in the paper).
        flip: add the mirror image of every crop.
        chunk: at most this many crops per forward pass (memory); all at once if None.

    Returns:
        Posteriors ``(N, C)`` in float32.
    """
    net = models.to_dense(net) if isinstance(net, models.VGG) else net
    crop = _check_size(net, images, crop_size)
    if crop is None:
        raise ConfigError("multi_crop needs crop_size (the net has no crop_size attribute)")
    n, _, h, w = images.shape
    corners = crop_grid(h, w, crop, grid)
    crops = torch.stack([images[..., t : t + crop, s : s + crop] for t, s in corners], 1)
    if flip:
        crops = torch.cat([crops, crops.flip(-1)], 1)  # (N, 2 * grid**2, 3, crop, crop)
    flat = crops.flatten(0, 1)
    scores = torch.cat([_scores(net, part) for part in flat.split(chunk or len(flat))])
    return scores.softmax(1).view(n, crops.shape[1], -1).mean(1)


def average_posteriors(posteriors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean of several posteriors of the same images: over test scales (Sec. 4.2),
    over nets (Sec. 4.4) or over protocols (Table 5).

    >>> average_posteriors([torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])])
    tensor([[0.7500, 0.2500]])
    """
    return torch.stack(list(posteriors)).mean(0)


def dense_and_multi_crop(net: nn.Module, images: torch.Tensor, **kwargs) -> torch.Tensor:
    """Dense and multi-crop posteriors averaged (Sec. 4.3, Table 5: "multi-crop & dense")."""
    return (dense_evaluate(net, images) + multi_crop(net, images, **kwargs)) / 2


def multi_scale(
    net: nn.Module,
    images_per_scale: Sequence[torch.Tensor],
    protocol: Callable[..., torch.Tensor] = dense_evaluate,
) -> torch.Tensor:
    """Multi-scale evaluation (Sec. 4.2): posteriors averaged over test scales Q.

    Args:
        net: as for :func:`dense_evaluate`.
        images_per_scale: the same N images rescaled to each Q, one batch per scale.
        protocol: what to run at each scale (:func:`dense_evaluate`, :func:`multi_crop`...).
    """
    return average_posteriors([protocol(net, images) for images in images_per_scale])


def fusion(
    nets: Sequence[nn.Module],
    images: torch.Tensor | Sequence[torch.Tensor],
    protocol: Callable[..., torch.Tensor] = dense_evaluate,
) -> torch.Tensor:
    """Fusion of several nets (Sec. 4.4, Table 6): their soft-max posteriors averaged.

    Args:
        nets: the networks; each must output the classes in the same order.
        images: what ``protocol`` takes (a batch, or batches for :func:`multi_scale`).
        protocol: ``protocol(net, images) -> posteriors``.
    """
    return average_posteriors([protocol(net, images) for net in nets])


def topk_error(posteriors: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Top-k error in percent: how often the true class is not among the k most likely.

    >>> p = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.5, 0.4]])
    >>> topk_error(p, torch.tensor([0, 1, 2]), 1), topk_error(p, torch.tensor([0, 1, 2]), 2)
    (66.66666666666667, 0.0)
    """
    return 100.0 * (1.0 - topk_correct(posteriors, labels, k).double().mean().item())


def topk_correct(posteriors: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per sample, whether the true class is among the k most likely (bool ``(N,)``).

    Ties count against the net: another class that scores as high as the true
    one ranks above it, so a net that gives every class the same score is never
    right (``topk`` would pick the first classes and credit their images), and
    the answer does not depend on how ties are broken. Rows with a NaN are wrong.

    >>> p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    >>> topk_correct(p, torch.tensor([0, 1]), 1).tolist(), topk_correct(p, torch.tensor([0, 1]), 2)
    ([False, False], tensor([True, True]))
    """
    labels = labels.to(posteriors.device)
    truth = posteriors.gather(1, labels[:, None])
    ahead = (posteriors >= truth).sum(1) - 1  # the other classes scoring at least as high
    return (ahead < k) & ~posteriors.isnan().any(1)


# --- image-level preprocessing -----------------------------------------------------------


def rescaled_size(height: int, width: int, q: int) -> tuple[int, int]:
    """Size after isotropic rescaling to shorter side Q, as training's ``isotropic_rescale``.

    >>> rescaled_size(375, 500, 256), rescaled_size(500, 375, 384)
    ((256, 341), (512, 384))
    """
    if min(height, width) == q:
        return height, width
    if width <= height:
        return max(q, round(height * q / width)), q
    return q, max(q, round(width * q / height))


def rescale(image: Image.Image, q: int) -> torch.Tensor:
    """The image rescaled to shorter side Q (bilinear, antialiased), uint8 ``(3, H, W)``.

    The same resampling as training (:func:`vgg_repro.data.transforms.isotropic_rescale`).
    """
    return T.to_uint8_tensor(T.isotropic_rescale(image, q))


def preprocess(
    image: Image.Image, q: int, mean_rgb: Sequence[float], std_rgb: Sequence[float] = (1, 1, 1)
) -> torch.Tensor:
    """Rescale to shorter side Q and subtract the mean RGB (Sec. 2.1), float ``(3, H, W)``.

    ``mean_rgb`` and ``std_rgb`` are in pixel units (0 to 255); the paper divides by nothing.
    """
    mean = torch.tensor(mean_rgb, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(std_rgb, dtype=torch.float32).view(3, 1, 1)
    return (rescale(image, q).float() - mean) / std


class ScoreMapNet(nn.Module):
    """A net's dense form behind its input normalisation: raw RGB (0-255) in, score map out.

    Mirroring and cropping commute with per-channel normalisation, so the
    protocols may run on raw pixels. ``order`` (optional) reorders the output
    classes, so that nets trained with different class orders can be fused.
    """

    def __init__(self, model: models.VGG, mean_rgb, std_rgb=(1.0, 1.0, 1.0), order=None) -> None:
        super().__init__()
        self.dense = models.to_dense(model)
        self.crop_size = model.crop_size
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        order = None if order is None else torch.as_tensor(order, dtype=torch.long)
        self.register_buffer("order", order, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Score map ``(N, C, h, w)`` of raw 0-255 RGB images ``(N, 3, H, W)``."""
        scores = self.dense((images.float() - self.mean) / self.std)
        return scores if self.order is None else scores[:, self.order]


PROTOCOLS: dict[str, Callable[..., torch.Tensor]] = {
    "dense": dense_evaluate,
    "multi-crop": multi_crop,
    "dense+multi-crop": dense_and_multi_crop,
}
