"""The paper's training data as a LightningDataModule (Sec. 3.1).

:class:`ImageFolderDataModule` reads ``ROOT/train/CLASS/*`` and ``ROOT/val/CLASS/*``
(:mod:`vgg_repro.data.images`), augments as the paper (:mod:`vgg_repro.data.transforms`) and
splits the global batch over devices (:func:`per_device_batch`). Workers decode,
rescale, crop and flip; the colour shift and mean subtraction run on the device
on whole uint8 batches (:meth:`ImageFolderDataModule.on_after_batch_transfer`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn

from vgg_repro.data import transforms as T
from vgg_repro.data.folders import IMAGE_EXTENSIONS, check_classes
from vgg_repro.data.images import ImageFolder, SeededSampler
from vgg_repro.data.stats import load_stats
from vgg_repro.errors import ConfigError


def per_device_batch(global_batch: int, world_size: int = 1, accumulation: int = 1) -> int:
    """The per-device batch that keeps the global batch fixed (Sec. 3.1: 256).

    >>> per_device_batch(256, 4), per_device_batch(256, 8, 2), per_device_batch(256)
    (64, 16, 256)
    >>> per_device_batch(256, 3)
    Traceback (most recent call last):
    ...
    vgg_repro.errors.ConfigError: data.batch_size=256 (the global batch) cannot be split ...
    """
    parts = world_size * accumulation
    if global_batch < 1 or global_batch % parts:
        raise ConfigError(
            f"data.batch_size={global_batch} (the global batch) cannot be split over "
            f"{world_size} devices x {accumulation} accumulation steps; choose a batch size "
            f"divisible by {parts}"
        )
    return global_batch // parts


class ImageFolderDataModule(pl.LightningDataModule):
    """``ROOT/train/CLASS/*`` and ``ROOT/val/CLASS/*`` with the paper's augmentation.

    Args:
        root: dataset root (``test`` split: ``ROOT/test`` if present, else ``val``).
        scale_min: S_min of the isotropic rescale (Sec. 3.1: 256; 384 for S=384).
        scale_max: S_max; equal to ``scale_min`` for a fixed S, 512 for scale jittering.
        crop_size: side of the random training crop (224).
        val_scale: Q for validation during training (rescale, then centre crop);
            default ``(scale_min + scale_max) // 2``: S for a fixed S, 384 for
            [256, 512], the paper's single-scale Q (Sec. 3.2).
        reference_crop_size: the crop size at which ``scale_min``, ``scale_max`` and
            ``val_scale`` are stated; each is multiplied by ``crop_size /
            reference_crop_size`` and rounded to the nearest pixel
            (:func:`~vgg_repro.data.transforms.scaled_size`). ``None``: they are
            pixels. The miniature states 224, so that a Table 3 row's S = 384 trains
            at 55 pixels with its 32-pixel crops.
        batch_size: the GLOBAL batch over all devices and accumulation (256).
        num_workers: loader processes per device; default: CPU cores / devices.
        colour_shift: AlexNet's PCA colour shift in training.
        colour_std: its sigma (AlexNet: 0.1).
        flip: random horizontal flips in training.
        stats: JSON from ``vgg-repro data stats`` (mean RGB, PCA); default ImageNet's.
        skip_bad_files: skip unreadable images, listing them in
            ``<default_root_dir>/skipped_files.txt``, instead of stopping.
        jpeg_draft: let libjpeg decode large JPEGs at reduced size (faster).
        cache_decoded: decode (and, at a fixed scale, rescale) each image once and keep
            it in memory; later epochs only crop, flip and shift colour. For small
            datasets such as the miniature's, not ImageNet.
        pin_memory: default: when CUDA is available.
        persistent_workers: default: when num_workers > 0.
    """

    def __init__(
        self,
        root: str,
        scale_min: int = 256,
        scale_max: int = 256,
        crop_size: int = 224,
        val_scale: int | None = None,
        reference_crop_size: int | None = None,
        batch_size: int = 256,
        num_workers: int | None = None,
        colour_shift: bool = True,
        colour_std: float = T.COLOUR_SHIFT_STD,
        flip: bool = True,
        stats: str | None = None,
        skip_bad_files: bool = False,
        jpeg_draft: bool = True,
        cache_decoded: bool = False,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
    ) -> None:
        super().__init__()
        if reference_crop_size is not None and reference_crop_size < 1:
            raise ConfigError(
                f"data.reference_crop_size={reference_crop_size} must be a positive crop size "
                "or null"
            )
        stated = (scale_min, scale_max, val_scale)
        scale_min, scale_max, val_scale = (
            None if s is None else T.scaled_size(s, crop_size, reference_crop_size) for s in stated
        )
        if scale_min > scale_max:
            raise ConfigError(f"data.scale_min={stated[0]} > data.scale_max={stated[1]}")
        if crop_size > scale_min:
            scaled = f" ({scale_min} pixels at this crop size)" if scale_min != stated[0] else ""
            raise ConfigError(
                f"data.crop_size={crop_size} > data.scale_min={stated[0]}{scaled}: the crop "
                "must fit in the rescaled image; raise data.scale_min"
            )
        val_scale = val_scale or (scale_min + scale_max) // 2
        if val_scale < crop_size:
            raise ConfigError(f"data.val_scale={val_scale} < data.crop_size={crop_size}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_workers is not None and num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0 or null, got {num_workers}")
        self.save_hyperparameters()  # as stated in the config
        # The sizes used, in pixels (the stated ones scaled by crop / reference crop).
        self.train_scale = (scale_min, scale_max)
        self.val_scale = val_scale
        self.root = Path(root)
        # Train and val classes are checked here, before any training starts.
        self.classes = check_classes(self.root, ("train", "val", "test"))
        stats = load_stats(stats)
        self.mean_rgb_pixels = [float(v) for v in stats["mean_rgb"]]  # recorded in checkpoints
        self.mean_rgb = torch.tensor(stats["mean_rgb"], dtype=torch.float32)
        self.eigval = torch.tensor(stats["eigval"], dtype=torch.float32)
        self.eigvec = torch.tensor(stats["eigvec"], dtype=torch.float32)
        self._on_device: dict[torch.device, tuple[torch.Tensor, ...]] = {}
        self.skip_log: Path | None = None
        self.batch_per_device = batch_size

    @property
    def num_classes(self) -> int:
        """Number of class folders (linked to ``model.num_classes`` by the CLI)."""
        return len(self.classes)

    def setup(self, stage: str) -> None:
        hp, trainer = self.hparams, self.trainer
        world, accum = 1, 1
        if trainer is not None:
            world, accum = trainer.world_size, trainer.accumulate_grad_batches
            self.skip_log = Path(trainer.default_root_dir) / "skipped_files.txt"
        self.batch_per_device = per_device_batch(hp.batch_size, world, accum)
        common = {"skip_bad_files": hp.skip_bad_files, "skip_log": self.skip_log}
        common |= {"classes": self.classes, "jpeg_draft": hp.jpeg_draft}
        common |= {"cache_decoded": hp.cache_decoded}
        evaluate = T.EvalTransform(self.val_scale, hp.crop_size)
        if stage == "fit":
            colour = hp.colour_std if hp.colour_shift else None
            train = T.TrainTransform(*self.train_scale, hp.crop_size, hp.flip, colour)
            self.train_set = ImageFolder(self.root / "train", train, **common)
            if len(self.train_set) < hp.batch_size:
                raise ConfigError(
                    f"data.batch_size={hp.batch_size} exceeds the {len(self.train_set)} training "
                    f"images in {self.root / 'train'}"
                )
        if stage in ("fit", "validate"):
            self.val_set = ImageFolder(self.root / "val", evaluate, **common)
        if stage == "test":
            split = "test" if (self.root / "test").is_dir() else "val"
            self.test_set = ImageFolder(self.root / split, evaluate, **common)
        for name in ("train_set", "val_set", "test_set"):
            empty = getattr(getattr(self, name, None), "empty_classes", [])
            if empty:
                rank_zero_warn(
                    f"{len(empty)} class folders of {getattr(self, name).root} have no images "
                    f"({empty[:5]}): their classes cannot be learnt or tested"
                )
            ignored = getattr(getattr(self, name, None), "ignored", [])
            if ignored:
                rank_zero_warn(
                    f"{len(ignored)} files are not used because their names do not end in an "
                    f"image extension {IMAGE_EXTENSIONS}: {ignored[:5]}"
                    f"{' ...' if len(ignored) > 5 else ''}. Rename or remove them."
                )

    def _loader(self, dataset, sampler=None) -> torch.utils.data.DataLoader:
        hp = self.hparams
        workers = hp.num_workers
        if workers is None:
            cores = (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            )
            devices = self.trainer.num_devices if self.trainer is not None else 1
            workers = max(1, (cores or 1) // max(1, devices))
        pin = torch.cuda.is_available() if hp.pin_memory is None else hp.pin_memory
        persistent = workers > 0 if hp.persistent_workers is None else hp.persistent_workers
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.batch_per_device,
            sampler=sampler,
            drop_last=sampler is not None,  # every training step sees the full global batch
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=persistent and workers > 0,
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        world, rank = 1, 0
        if self.trainer is not None:
            world, rank = self.trainer.world_size, self.trainer.global_rank
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        return self._loader(self.train_set, SeededSampler(self.train_set, world, rank, seed))

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.test_set)

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list:
        """uint8 images -> float, colour shift (training), mean subtraction; on the device."""
        images, labels, *alpha = batch
        if images.device not in self._on_device:
            self._on_device[images.device] = tuple(
                t.to(images.device) for t in (self.mean_rgb, self.eigval, self.eigvec)
            )
        mean, eigval, eigvec = self._on_device[images.device]
        x = images.float()
        if alpha:
            x = T.colour_shift(x, alpha[0], eigval, eigvec)
        return [T.subtract_mean(x, mean), labels]
