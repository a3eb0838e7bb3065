"""The paper's data augmentation (Sec. 3.1), named in the paper's words.

Training images go through, per image and per iteration:

1. :func:`isotropic_rescale`: the shorter side becomes S ("training scale"), with
   S fixed (256 or 384) or drawn per image from [S_min, S_max] (scale jittering,
   [256, 512]);
2. :func:`random_crop`: one crop_size x crop_size crop (224 at paper scale);
3. a random horizontal flip;
4. :func:`colour_shift`: AlexNet's random RGB shift along the principal
   components of the training set's pixels;
5. :func:`subtract_mean`: "the only pre-processing we do is subtracting the mean
   RGB value, computed on the training set, from each pixel" (Sec. 2.1).

Steps 1-3 run in the loader's worker processes on PIL images (C code, no Python
per pixel), or, when the image was rescaled once to a fixed S and kept as a uint8
tensor (``cache_decoded``), as slicing of that tensor, and yield uint8 tensors;
steps 4-5 are tensor ops applied to the whole batch on the device (see
``ImageFolderDataModule.on_after_batch_transfer``), so four times fewer bytes
travel to the GPU. Every random draw of an image comes
from one integer seed (:class:`TrainTransform`), so the same sample gets the same
augmentation whatever the number of workers, processes or restarts.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image

# The mean RGB of ImageNet's training set on the 0..255 scale, as published with
# the authors' Caffe models (VGG_ILSVRC_16_layers, given there in BGR order as
# 103.939, 116.779, 123.68). `vgg-repro data stats` computes it for other data.
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
# AlexNet's PCA of ImageNet RGB pixels (values in [0, 1]): eigenvalues and
# eigenvectors (columns), the usual constants (e.g. fb.resnet.torch). The VGG
# paper says "as in AlexNet" and does not print them (paper-facts.md).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
# AlexNet: each principal component's multiplier is drawn from N(0, 0.1^2).
COLOUR_SHIFT_STD = 0.1


def scaled_size(size: int, crop_size: int, reference_crop_size: int | None) -> int:
    """An image size stated for crops of ``reference_crop_size``, at ``crop_size``.

    The miniature trains the paper's recipe at a 32-pixel crop; its S and Q are the
    paper's multiplied by 32 / 224 and rounded to the nearest pixel, so that an
    image holds as many crops as in the paper (Sec. 3.1, 3.2):

    >>> [scaled_size(s, 32, 224) for s in (224, 256, 384, 512)]
    [32, 37, 55, 73]
    >>> scaled_size(256, 224, 224), scaled_size(37, 32, None)
    (256, 37)
    """
    if reference_crop_size is None or reference_crop_size == crop_size:
        return int(size)
    return int(math.floor(size * crop_size / reference_crop_size + 0.5))


def isotropic_rescale(img: Image.Image, scale: int) -> Image.Image:
    """Resize so that the shorter side is ``scale``, keeping the aspect ratio.

    Bilinear, antialiased when shrinking (PIL widens the filter support).

    >>> isotropic_rescale(Image.new("RGB", (640, 480)), 256).size
    (341, 256)
    """
    w, h = img.size
    if min(w, h) == scale:
        return img
    if w <= h:
        size = (scale, max(scale, round(h * scale / w)))
    else:
        size = (max(scale, round(w * scale / h)), scale)
    return img.resize(size, Image.BILINEAR)


def random_crop(img: Image.Image, size: int, rng: random.Random) -> Image.Image:
    """A ``size`` x ``size`` crop at a uniformly random position."""
    w, h = img.size
    left, top = rng.randint(0, w - size), rng.randint(0, h - size)
    return img.crop((left, top, left + size, top + size))


def random_crop_tensor(image: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    """:func:`random_crop` of a ``(3, H, W)`` tensor: the same draws, the same pixels.

    >>> image = torch.arange(2 * 3 * 4).view(2, 3, 4)
    >>> random_crop_tensor(image, 2, random.Random(0)).shape
    torch.Size([2, 2, 2])
    """
    h, w = image.shape[-2:]
    left, top = rng.randint(0, w - size), rng.randint(0, h - size)
    return image[:, top : top + size, left : left + size]


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """The central ``size`` x ``size`` crop.

    >>> center_crop(Image.new("RGB", (341, 256)), 224).size
    (224, 224)
    """
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a ``(3, H, W)`` uint8 tensor (one copy, no float).

    >>> to_uint8_tensor(Image.new("RGB", (5, 4), (1, 2, 3)))[:, 0, 0].tolist()
    [1, 2, 3]
    """
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1)


def colour_offsets(alpha: torch.Tensor, eigval: torch.Tensor, eigvec: torch.Tensor) -> torch.Tensor:
    """The RGB offset of AlexNet's colour shift, on the 0..255 scale.

    ``eigvec @ (alpha * eigval)`` per image: "to each RGB image pixel we add
    [p1, p2, p3][a1 l1, a2 l2, a3 l3]^T" (Krizhevsky et al. 2012, Sec. 4.1).

    Args:
        alpha: ``(3,)`` or ``(N, 3)`` multipliers, drawn from N(0, sigma^2).
        eigval: ``(3,)`` eigenvalues of the RGB covariance (pixels in [0, 1]).
        eigvec: ``(3, 3)`` eigenvectors as columns.

    Returns:
        ``(..., 3, 1, 1)`` offsets, to add to ``(..., 3, H, W)`` images.

    >>> e = torch.eye(3)
    >>> colour_offsets(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.1, 0.0, 0.0]), e).flatten()
    tensor([25.5000,  0.0000,  0.0000])
    """
    shift = (alpha * eigval) @ eigvec.T * 255.0
    return shift[..., :, None, None]


def colour_shift(
    images: torch.Tensor, alpha: torch.Tensor, eigval: torch.Tensor, eigvec: torch.Tensor
) -> torch.Tensor:
    """Add AlexNet's PCA colour shift to float images on the 0..255 scale.

    Every pixel of an image moves by the same RGB offset (see :func:`colour_offsets`).
    Works on one ``(3, H, W)`` image with ``(3,)`` alpha or a batch with ``(N, 3)``.
    """
    return images + colour_offsets(alpha, eigval, eigvec).to(images.dtype)


def subtract_mean(images: torch.Tensor, mean_rgb: torch.Tensor) -> torch.Tensor:
    """Subtract the training set's mean RGB (Sec. 2.1) from float 0..255 images.

    >>> subtract_mean(torch.full((3, 1, 1), 100.0), torch.tensor([100.0, 50.0, 0.0])).flatten()
    tensor([  0.,  50., 100.])
    """
    return images - mean_rgb.to(images.dtype)[:, None, None]


class TrainTransform:
    """Rescale to a random S, crop, flip, and draw the colour-shift multipliers.

    Args:
        scale_min: smallest training scale S_min (Sec. 3.1: 256).
        scale_max: largest training scale S_max; equal to ``scale_min`` for
            single-scale training, 512 for scale jittering.
        crop_size: side of the random crop (224).
        flip: random horizontal flip with probability 1/2.
        colour_std: sigma of the colour-shift multipliers (AlexNet: 0.1); 0
            or ``None`` disables the shift (no multipliers are returned).
    """

    def __init__(
        self,
        scale_min: int,
        scale_max: int,
        crop_size: int,
        flip: bool = True,
        colour_std: float | None = COLOUR_SHIFT_STD,
    ) -> None:
        self.scale_min, self.scale_max, self.crop_size = scale_min, scale_max, crop_size
        self.flip, self.colour_std = flip, colour_std

    @property
    def fixed_scale(self) -> int | None:
        """S when it is fixed (single-scale training), else ``None``."""
        return self.scale_min if self.scale_min == self.scale_max else None

    @property
    def largest_scale(self) -> int:
        """The largest S this transform rescales to."""
        return self.scale_max

    def draw_scale(self, rng: random.Random) -> int:
        """S for one image: fixed, or uniform over the integers of [S_min, S_max]."""
        return rng.randint(self.scale_min, self.scale_max)

    def target_scale(self, seed: int) -> int:
        """The S that ``self(img, seed)`` will use (lets the JPEG decoder shrink early)."""
        return self.draw_scale(random.Random(seed))

    # ImageFolder(cache_decoded=True) may pass the image already rescaled to the fixed
    # S as a (3, H, W) uint8 tensor: cropping and flipping it is then slicing, with the
    # same random draws and the same pixels as the PIL path.
    accepts_rescaled_tensor = True

    def __call__(self, img: Image.Image | torch.Tensor, seed: int) -> tuple[torch.Tensor, ...]:
        """``(uint8 crop (3, crop, crop),)`` plus ``(alpha (3,),)`` when shifting colour.

        ``img`` is a PIL image, or a ``(3, H, W)`` uint8 tensor whose shorter side is
        the fixed S (see ``accepts_rescaled_tensor``).
        """
        rng = random.Random(seed)
        scale = self.draw_scale(rng)
        if isinstance(img, torch.Tensor):
            if min(img.shape[-2:]) != scale:
                raise ValueError(f"a tensor image must be rescaled to S = {scale} already")
            out = random_crop_tensor(img, self.crop_size, rng)
            out = out.flip(-1) if self.flip and rng.random() < 0.5 else out.clone()
        else:
            img = random_crop(isotropic_rescale(img, scale), self.crop_size, rng)
            if self.flip and rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            out = to_uint8_tensor(img)
        if not self.colour_std:
            return (out,)
        alpha = torch.tensor([rng.gauss(0.0, self.colour_std) for _ in range(3)])
        return out, alpha


class EvalTransform:
    """Validation during training: rescale to Q, then the central crop.

    This single centre crop only tracks training; the paper's dense and
    multi-crop protocols (Sec. 3.2) live in :mod:`vgg_repro.evaluation`.
    """

    def __init__(self, scale: int, crop_size: int) -> None:
        self.scale, self.crop_size = scale, crop_size

    def target_scale(self, seed: int | None = None) -> int:
        """Q, the shorter side before cropping."""
        return self.scale

    @property
    def fixed_scale(self) -> int:
        """Q: the scale is always fixed."""
        return self.scale

    @property
    def largest_scale(self) -> int:
        """Q."""
        return self.scale

    accepts_rescaled_tensor = True  # as TrainTransform's

    def __call__(
        self, img: Image.Image | torch.Tensor, seed: int | None = None
    ) -> tuple[torch.Tensor]:
        """``(uint8 crop (3, crop, crop),)``; ``img`` may be a tensor rescaled to Q."""
        if isinstance(img, torch.Tensor):
            if min(img.shape[-2:]) != self.scale:
                raise ValueError(f"a tensor image must be rescaled to Q = {self.scale} already")
            h, w = img.shape[-2:]
            top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
            return (img[:, top : top + self.crop_size, left : left + self.crop_size].clone(),)
        return (to_uint8_tensor(center_crop(isotropic_rescale(img, self.scale), self.crop_size)),)
