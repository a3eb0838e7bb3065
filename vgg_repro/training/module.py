"""The paper's training recipe (Sec. 3.1) as a LightningModule: :class:`VGGClassifier`.

Mini-batch SGD on soft-max cross-entropy, momentum 0.9, weight decay 5e-4, dropout
0.5 on FC6/FC7, learning rate 1e-2 divided by 10 when the validation top-1 error
stops improving; training stops when the rate would be divided a fourth time
(after running at the third-decreased rate, as the paper's "decreased 3 times") or
at ``trainer.max_epochs`` (74). Deeper nets start from a trained A
(``init_from_a``); S=384 and jittered nets from a trained net (``finetune_from``).
Both read the parent with ``weights_only=True``.

The module owns the recipe's settings; the parts that watch the run (the
plateau schedule, the NaN guard, dropout reseeding) are the Callbacks of
:mod:`vgg_repro.training.callbacks`, which it adds itself (``configure_callbacks``).
Logged through ``self.log`` (validation and test errors by torchmetrics):
``train/loss``, ``train/top1_error``, ``train/top5_error`` (percent; per epoch, and
``*_step`` every ``log_every_n_steps``), ``train/lr``, ``train/throughput`` (images/s,
all devices), ``val/*`` and ``test/*`` per epoch.

GPU speed: ``trainer.precision: bf16-mixed`` (paper configs), channels_last on
CUDA (``channels_last``), ``compile: true`` for torch.compile, one fused SGD
kernel on CUDA.
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vgg_repro import checkpoints, models
from vgg_repro.data.images import read_skip_log
from vgg_repro.errors import CheckpointError, ConfigError
from vgg_repro.training.callbacks import (
    CollapseGuard,
    DropoutReseed,
    EpochLog,
    NonFiniteLossGuard,
    PlateauSchedule,
)

__all__ = ["VGGClassifier"]


def _metrics(num_classes: int) -> MetricCollection:
    # validate_args=False: no host-device sync per step; states accumulate on device.
    kw = {"num_classes": num_classes, "average": "micro", "validate_args": False}
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(top_k=1, **kw),
            "top5": MulticlassAccuracy(top_k=min(5, num_classes), **kw),
        }
    )


class VGGClassifier(pl.LightningModule):
    """The paper's training recipe around a :class:`~vgg_repro.models.VGG` (``self.net``).

    Args:
        arch: configuration of Table 1 (A, A-LRN, B, C, D, E or an alias).
        num_classes: linked from the data in the CLI.
        width: channel multiplier (1.0: the paper's nets; 1/16: miniature).
        dropout: on FC6 and FC7 (Sec. 3.1: 0.5).
        crop_size: linked from ``data.crop_size`` in the CLI (224).
        init: random initialisation, ``paper`` (N(0, 0.01^2)), ``xavier`` or ``none``.
        init_from_a: checkpoint of a trained net A; its first four convolutions
            and three FC layers are copied in (Sec. 3.1; B, C, D, E).
        finetune_from: checkpoint of the same configuration to start from
            (S=384 from S=256; jittered from S=384).
        lr: initial learning rate (1e-2; 1e-3 for S=384 from S=256).
        momentum: SGD momentum (0.9).
        weight_decay: L2 penalty multiplier (5e-4).
        lr_factor: the rate is multiplied by this on a plateau (0.1).
        lr_patience: validation runs without improvement before a decrease.
            The paper does not say; 2 is our choice.
        max_lr_decreases: stop when the rate would fall a ``max + 1``-th time (3).
        channels_last: NHWC tensors; ``None``: on CUDA only.
        compile: ``torch.compile`` the network in place (state dict keys unchanged).
    """

    def __init__(
        self,
        arch: str = "A",
        num_classes: int = 1000,
        width: float = 1.0,
        dropout: float = 0.5,
        crop_size: int = 224,
        init: str = "paper",
        init_from_a: str | None = None,
        finetune_from: str | None = None,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        lr_factor: float = 0.1,
        lr_patience: int = 2,
        max_lr_decreases: int = 3,
        channels_last: bool | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        for name, value, ok, allowed in [
            ("lr", lr, lr > 0, "> 0"),
            ("momentum", momentum, 0 <= momentum < 1, "in [0, 1)"),
            ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
            ("lr_factor", lr_factor, 0 < lr_factor < 1, "in (0, 1)"),
            ("lr_patience", lr_patience, lr_patience >= 0, ">= 0"),
            ("max_lr_decreases", max_lr_decreases, max_lr_decreases >= 0, ">= 0"),
        ]:
            if not (isinstance(value, int | float) and math.isfinite(value) and ok):
                raise ConfigError(
                    f"model.{name}={value!r} is out of range: it must be a finite number {allowed}"
                )
        if init_from_a and finetune_from:
            raise ConfigError("set model.init_from_a or model.finetune_from, not both")
        arch = models.canonical_name(arch)
        self.save_hyperparameters()
        self.net = models.build(arch, num_classes, width, dropout, crop_size=crop_size, init=init)
        self.val_metrics, self.test_metrics = _metrics(num_classes), _metrics(num_classes)
        self._top5 = min(5, num_classes)
        self.classes: list[str] | None = None
        self._channels_last = False
        self._tick, self._tick_images = time.perf_counter(), 0

    # --- setup: parents, speed options

    def configure_callbacks(self) -> list[pl.Callback]:
        """The recipe's schedule, the NaN and collapse guards, dropout reseeding and the
        epoch lines (see callbacks.py)."""
        hp = self.hparams
        schedule = PlateauSchedule(hp.lr_factor, hp.lr_patience, hp.max_lr_decreases)
        return [schedule, NonFiniteLossGuard(), CollapseGuard(), DropoutReseed(), EpochLog()]

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        self.classes = list(dm.classes) if dm is not None and hasattr(dm, "classes") else None
        cuda = self.trainer.strategy.root_device.type == "cuda"
        self._channels_last = (
            cuda if self.hparams.channels_last is None else self.hparams.channels_last
        )
        if self._channels_last:
            self.net.to(memory_format=torch.channels_last)
        if self.hparams.compile:
            self.net.compile()

    def on_fit_start(self) -> None:
        # After Lightning restored a checkpoint being resumed: the parent only starts a run.
        if self.trainer.ckpt_path is None:
            self._load_parent()
        # One line on the net, in place of Lightning's model summary (off by default in
        # vgg-repro fit: its FLOPs column read 0, for want of an example input).
        if self.trainer.is_global_zero:
            hp, crop = self.hparams, self.net.crop_size
            shape = models.build_meta(
                hp.arch, num_classes=self.net.num_classes, width=hp.width, crop_size=crop
            )  # counted on the meta device: no arithmetic, whatever the real net's device
            print(
                f"net {self.net.name} (width {hp.width:g}, {self.net.num_classes} classes, "
                f"{crop}-pixel crops): {models.count_parameters(shape):,} parameters, "
                f"{models.count_macs(shape, crop) / 1e6:,.1f} million multiply-accumulates "
                "per crop",
                flush=True,
            )

    def _load_parent(self) -> None:
        path = self.hparams.init_from_a or self.hparams.finetune_from
        if not path:
            return
        arch = None if self.hparams.init_from_a else self.hparams.arch
        parent, meta = checkpoints.model_from_checkpoint(path, arch, self.hparams.num_classes)
        if self.classes is not None and meta["classes"] not in (None, self.classes):
            raise CheckpointError(f"{path} was trained on other classes than data.root's")
        if self.hparams.init_from_a:
            if meta["arch"] not in ("A", "A-LRN"):
                raise CheckpointError(f"model.init_from_a={path} holds net {meta['arch']}, not A")
            models.init_from_a(self.net, parent)  # Sec. 3.1: 4 convs + 3 FC from A
        else:
            models.load_state_dict_checked(self.net, parent.state_dict(), str(path))

    # --- steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        # Sums over the epoch of (loss x n, top-1 hits, top-5 hits, n), kept on the device.
        self._train_sums = torch.zeros(4, device=self.device)
        self._tick, self._tick_images = time.perf_counter(), 0

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)  # Sec. 3.1: multinomial logistic regression
        n = y.shape[0]
        # The training error by the same top-k test as validation's torchmetrics, as
        # plain tensor ops accumulated on the device: one fused update a step, and no
        # host synchronisation; logged through self.log at the epoch's end.
        with torch.no_grad():
            hits = logits.topk(self._top5, dim=1).indices.eq(y[:, None])
            step = torch.stack([loss * n, hits[:, 0].sum(), hits.any(1).sum(), loss.new_tensor(n)])
            self._train_sums += step
        self._tick_images += n * self.trainer.world_size
        # Step values only at the steps Lightning writes (every log_every_n_steps),
        # where reading them costs one synchronisation.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            now = time.perf_counter()
            values = {
                "train/loss_step": step[0] / n,
                "train/top1_error_step": 100 - step[1] * 100 / n,
                "train/top5_error_step": 100 - step[2] * 100 / n,
                "train/lr": self.trainer.optimizers[0].param_groups[0]["lr"],
                "train/throughput": self._tick_images / max(now - self._tick, 1e-9),
            }
            self.log_dict(values, on_step=True, on_epoch=False, rank_zero_only=True)
            self._tick, self._tick_images = now, 0
        return loss

    def on_train_epoch_end(self) -> None:
        loss, top1, top5, n = self.trainer.strategy.reduce(self._train_sums, reduce_op="sum")
        values = {"train/loss": loss / n, "train/top1_error": 100 - top1 * 100 / n}
        values["train/top5_error"] = 100 - top5 * 100 / n
        self.log_dict(values, sync_dist=True)  # reduced already: averages equal values
        dm = self.trainer.datamodule
        skipped = read_skip_log(getattr(dm, "skip_log", None))
        if skipped:
            self.log("data/skipped_files", float(len(skipped)), sync_dist=True)
            rank_zero_warn(
                f"{len(skipped)} unreadable images skipped so far, listed in {dm.skip_log}"
            )

    def epoch_train_loss(self) -> float | None:
        """The mean training loss of the current epoch so far, over every process."""
        sums = getattr(self, "_train_sums", None)
        if sums is None:
            return None
        loss, n = self.trainer.strategy.reduce(sums[[0, 3]], reduce_op="sum").tolist()
        return loss / n if n else None

    def _eval_step(self, batch: list[torch.Tensor], metrics: MetricCollection, split: str):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        metrics.update(logits, y)
        self.log(f"{split}/loss", loss, on_epoch=True, batch_size=x.shape[0], sync_dist=True)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, "test")

    def _log_epoch(self, metrics: MetricCollection, split: str) -> dict:
        values = {f"{split}/{k}_error": 100 * (1 - v) for k, v in metrics.compute().items()}
        metrics.reset()
        # Already reduced over processes by torchmetrics; sync_dist only averages equal values.
        self.log_dict(values, prog_bar=split == "val", sync_dist=True)
        return values

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics, "test")

    # --- the optimizer: SGD with momentum and weight decay (Sec. 3.1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        # On a GPU one fused kernel updates every weight; on the CPU PyTorch's
        # default (foreach), whose results the reference run records.
        return torch.optim.SGD(
            self.parameters(),
            lr=hp.lr,
            momentum=hp.momentum,
            weight_decay=hp.weight_decay,
            fused=True if self.device.type == "cuda" else None,
        )

    # --- checkpoints

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # What evaluation needs from the file alone: architecture, classes and the
        # training scale and mean RGB that the test scales and inputs follow from.
        meta = checkpoints.model_meta(self.net, self.hparams.width, self.classes)
        try:
            dm = self.trainer.datamodule
        except RuntimeError:  # saved by hand, outside a Trainer
            dm = None
        if dm is not None and hasattr(dm, "train_scale"):
            meta["scale_min"], meta["scale_max"] = dm.train_scale
            meta["mean_rgb"] = list(dm.mean_rgb_pixels)
        checkpoint[checkpoints.META_KEY] = meta

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get(checkpoints.META_KEY) or {}
        self.classes = meta.get("classes", self.classes)
