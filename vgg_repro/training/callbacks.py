"""The parts of the training recipe that watch a run rather than define it, as Callbacks.

:class:`~vgg_repro.training.module.VGGClassifier` adds all three to every run through
``configure_callbacks`` (Lightning's public hook), with the settings of its own
arguments, so a config states the recipe in one place (``model.lr_patience``...):

- :class:`PlateauSchedule`: Sec. 3.1, "the learning rate was decreased by a factor
  of 10 when the validation set accuracy stopped improving", and training stopped
  after the third decrease;
- :class:`NonFiniteLossGuard`: stop at the first NaN or infinite loss, before a
  diverged net is written to a checkpoint;
- :class:`CollapseGuard`: stop, likewise, when a net that had learnt falls back to
  chance (its training loss back at ln K, or its validation error back at chance);
- :class:`DropoutReseed`: dropout noise as a function of (seed, epoch, rank), so that
  a run resumed at an epoch boundary draws the noise of the uninterrupted run;
- :class:`EpochLog`: one line per epoch where no progress bar draws (a DVC stage, a
  log file): the loss, the validation error, the rate, the speed and the time left.

Each keeps what it must remember in the checkpoint (``state_dict``), so
``--ckpt_path last`` resumes the schedule exactly.
"""

from __future__ import annotations

import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from vgg_repro.errors import CollapseError, DivergenceError

__all__ = [
    "CollapseGuard",
    "DropoutReseed",
    "EpochLog",
    "NonFiniteLossGuard",
    "PlateauSchedule",
    "collapse",
    "epoch_line",
]


class PlateauSchedule(Callback):
    """Divide the learning rate on a validation plateau; stop after the last decrease.

    Stepped at the end of each validation run, before the end-of-epoch checkpoint is
    written, so the checkpoint holds the stepped state (Lightning's own scheduler
    stepping comes after that checkpoint, which would make a resumed run step once
    less). Training stops when the rate would be divided a ``max_decreases + 1``-th
    time, that is after running at the ``max_decreases``-th decreased rate.

    Args:
        factor: the rate is multiplied by this on a plateau (Sec. 3.1: 0.1).
        patience: validation runs without improvement before a decrease (not in the
            paper).
        max_decreases: how many decreases training runs through (Sec. 3.1: 3).
        monitor: the logged metric to minimise.
    """

    def __init__(
        self,
        factor: float = 0.1,
        patience: int = 2,
        max_decreases: int = 3,
        monitor: str = "val/top1_error",
    ) -> None:
        self.factor, self.patience, self.max_decreases = factor, patience, max_decreases
        self.monitor = monitor
        self.decreases = 0
        self.scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._restored: dict | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After every restore (strategies differ in when they restore callbacks).
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            trainer.optimizers[0], mode="min", factor=self.factor, patience=self.patience
        )
        if self._restored is not None:
            self.scheduler.load_state_dict(self._restored)
            self._restored = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.scheduler is None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        before = self.scheduler.get_last_lr()[0]
        self.scheduler.step(float(value))  # one device synchronisation per validation
        if self.scheduler.get_last_lr()[0] < before:
            self.decreases += 1
            if self.decreases > self.max_decreases:
                trainer.should_stop = True  # Sec. 3.1: "decreased 3 times", then stopped

    def state_dict(self) -> dict[str, Any]:
        scheduler = self.scheduler.state_dict() if self.scheduler else self._restored
        return {"scheduler": scheduler, "decreases": self.decreases}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored, self.decreases = state_dict["scheduler"], state_dict["decreases"]


class NonFiniteLossGuard(Callback):
    """Stop at the first NaN or infinite training loss, naming its step.

    The loss is tested on the device at every step and the flag read only every
    ``log_every_n_steps`` steps and at the epoch's last batch, so the guard adds no
    device synchronisation to a step. The end-of-epoch checkpoint is written after
    the last batch's check: a diverged net is never saved, and ``last.ckpt`` stays the
    last good state.
    """

    def __init__(self) -> None:
        self._first_bad_step: torch.Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Global step of the first non-finite loss, -1 while all are finite.
        self._first_bad_step = torch.full((), -1, dtype=torch.long, device=pl_module.device)

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        first = self._first_bad_step
        bad = ~torch.isfinite(loss.detach()) & (first < 0)
        self._first_bad_step = torch.where(bad, trainer.global_step, first)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        last = batch_idx + 1 >= trainer.num_training_batches
        if not (last or trainer.global_step % trainer.log_every_n_steps == 0):
            return
        step = int(trainer.strategy.reduce(self._first_bad_step, reduce_op="max"))
        if step < 0:
            return
        kept = _kept_checkpoint(trainer)
        raise DivergenceError(
            f"the training loss became NaN or infinite at step {step} (epoch "
            f"{trainer.current_epoch}); stopped without saving, {kept}. Lower model.lr, "
            "check the data (data.stats, corrupt images) or resume with --ckpt_path last."
        )


def _kept_checkpoint(trainer: pl.Trainer) -> str:
    cb = trainer.checkpoint_callback
    ckpt = Path(cb.dirpath) / "last.ckpt" if cb is not None and cb.dirpath else None
    if ckpt is not None and ckpt.is_file():
        return f"the last good checkpoint is {ckpt}"
    return "no checkpoint was written yet"


# A net "has learnt" once its training loss is at most LEARNT x ln K or its validation
# error at most LEARNT x chance; it "is back at chance" when the loss is at least
# BACK x ln K or the error at least BACK x chance. For 10 classes: learnt at a loss of
# 1.73 or an error of 67.5%, collapsed at 2.19 or 87.3%. A net that learns stays far
# from both bounds; one that collapses crosses the second in a single epoch.
LEARNT, BACK = 0.75, 0.95


def collapse(
    num_classes: int, loss: float, error: float | None, best_loss: float, best_error: float
) -> str | None:
    """Why a net that had learnt is back at chance, or None.

    ``loss``: this epoch's mean training loss; ``error``: its validation top-1 error
    (%); ``best_*``: the lowest of earlier epochs (``inf`` if none).

    >>> collapse(10, 2.32, 90.0, 1.21, 40.0)
    'the training loss is 2.32, back at ln(10) = 2.30 (chance), after 1.21'
    >>> collapse(10, 1.30, 89.0, 1.21, 40.0)
    'the validation top-1 error is 89.0%, back at chance (90.0%), after 40.0%'
    >>> collapse(10, 2.32, 90.0, 2.25, 88.0) is None  # never learnt: a plateau, not a collapse
    True
    """
    chance_loss, chance_error = math.log(num_classes), 100.0 * (1 - 1 / num_classes)
    if best_loss <= LEARNT * chance_loss and loss >= BACK * chance_loss:
        return (
            f"the training loss is {loss:.2f}, back at ln({num_classes}) = {chance_loss:.2f} "
            f"(chance), after {best_loss:.2f}"
        )
    if error is not None and best_error <= LEARNT * chance_error and error >= BACK * chance_error:
        return (
            f"the validation top-1 error is {error:.1f}%, back at chance ({chance_error:.1f}%), "
            f"after {best_error:.1f}%"
        )
    return None


class CollapseGuard(Callback):
    """Stop when a net that had learnt falls back to chance, naming the epoch.

    Checked after each validation run, before that epoch's checkpoint is written
    (Lightning runs checkpoint callbacks last), so the collapsed net is never saved and
    ``last.ckpt`` stays the last good state, as with :class:`NonFiniteLossGuard`. The
    bounds are :data:`LEARNT` and :data:`BACK` (see :func:`collapse`).
    """

    def __init__(self) -> None:
        self.best_loss, self.best_error = math.inf, math.inf

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not hasattr(pl_module, "epoch_train_loss"):
            return
        loss = pl_module.epoch_train_loss()
        if loss is None:
            return
        value = trainer.callback_metrics.get("val/top1_error")
        error = None if value is None else float(value)
        num_classes = pl_module.net.num_classes
        why = collapse(num_classes, loss, error, self.best_loss, self.best_error)
        if why is not None:
            raise CollapseError(
                f"training collapsed at epoch {trainer.current_epoch}: {why}; stopped without "
                f"saving, {_kept_checkpoint(trainer)}. Lower model.lr, or check the parent "
                "net (model.init_from_a, model.finetune_from) and the data."
            )
        self.best_loss = min(self.best_loss, loss)
        if error is not None:
            self.best_error = min(self.best_error, error)

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "best_error": self.best_error}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_loss, self.best_error = state_dict["best_loss"], state_dict["best_error"]


class DropoutReseed(Callback):
    """Reseed PyTorch's generator at each epoch's first step from (seed, epoch, rank).

    Whatever ran before the epoch (loader start-up, sanity checks, a restore) then
    leaves no trace in the dropout noise, so a run resumed at an epoch boundary draws
    the same noise as an uninterrupted one. The seed is the run's
    ``seed_everything`` (``PL_GLOBAL_SEED``); data order and augmentation have their
    own seeds (:class:`~vgg_repro.data.images.SeededSampler`).
    """

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int
    ) -> None:
        if batch_idx == 0:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
            torch.manual_seed(hash((seed, trainer.current_epoch, trainer.global_rank)) % 2**63)


def epoch_line(
    epoch: int,
    max_epochs: int | None,
    loss: float | None,
    val_top1: float | None,
    lr: float,
    images_per_second: float,
    elapsed: float,
    eta: float | None,
) -> str:
    """One epoch as a line of a log.

    >>> epoch_line(3, 40, 1.2346, 45.61, 0.01, 1234.5, 83.2, None)
    'epoch 3/40: loss 1.235, val top-1 error 45.6%, lr 0.01, 1,234 images/s, 0:01:23 elapsed'
    >>> epoch_line(3, 40, None, None, 0.01, 1234.5, 83.2, 600.0).split(", ")[-1]
    'ETA 0:10:00 at most'
    """
    parts = [f"epoch {epoch}" + (f"/{max_epochs}" if max_epochs else "") + ":"]
    parts.append(f"loss {loss:.3f}," if loss is not None else "loss -,")
    parts.append(f"val top-1 error {val_top1:.1f}%," if val_top1 is not None else "no validation,")
    parts.append(f"lr {lr:g}, {images_per_second:,.0f} images/s,")
    parts.append(f"{timedelta(seconds=round(elapsed))} elapsed")
    line = " ".join(parts)
    if eta is not None:
        line += f", ETA {timedelta(seconds=round(eta))} at most"  # the schedule may stop sooner
    return line


class EpochLog(Callback):
    """One line per epoch on stdout when no progress bar draws (``enable_progress_bar:
    false``, as in the pipeline's stages), from the first process only.

    The line of an epoch is written when all of its values are logged: at the start of
    the next epoch, or at the end of training (Lightning calls the module's
    ``on_train_epoch_end``, which logs the training loss, after the callbacks').
    """

    def __init__(self) -> None:
        self._pending: int | None = None

    def _active(self, trainer: pl.Trainer) -> bool:
        return trainer.progress_bar_callback is None and trainer.is_global_zero

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._first = time.perf_counter(), trainer.current_epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush(trainer)
        self._epoch_start, self._images, self._train_seconds = time.perf_counter(), 0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._images += int(batch[0].shape[0]) * trainer.world_size
        self._train_seconds = time.perf_counter() - self._epoch_start
        self._pending = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush(trainer)

    def _flush(self, trainer: pl.Trainer) -> None:
        if self._pending is None or not self._active(trainer):
            return
        done = self._pending + 1
        m = trainer.callback_metrics
        value = lambda k: float(m[k]) if k in m else None  # noqa: E731
        elapsed = time.perf_counter() - self._start
        per_epoch = elapsed / max(done - self._first, 1)
        most = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        eta = per_epoch * (most - done) if most else None
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else 0.0
        speed = self._images / max(self._train_seconds, 1e-9)
        line = epoch_line(
            done, most, value("train/loss"), value("val/top1_error"), lr, speed, elapsed, eta
        )
        print(line, file=sys.stdout, flush=True)
        self._pending = None
