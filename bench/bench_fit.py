"""CPU training throughput of `vgg-repro fit` against a plain PyTorch loop.

Both train the same network on the same images, loader, batches and
augmentation (the miniature profile: net A at 1/16 width, 32x32 crops, S = 37),
for the same steps; the first ``--warmup`` steps are not timed. Each run's
throughput is the batch over its median step time (step start to next step
start, data loading included), and runs alternate (plain, fit, plain, fit...)
keeping the best of each: what a shared machine allows. Lightning's overhead must stay under 5%::

    python bench/bench_fit.py                     # synthetic JPEGs in a temp folder
    python bench/bench_fit.py --data data/miniature --steps 80 --repeats 3

This is a benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from vgg_repro import training


def write_jpegs(root: Path, classes: int = 10, per_class: int = 64, seed: int = 0) -> Path:
    """A synthetic train/val folder of random JPEGs, 40 to 96 pixels a side."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", 4)):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = rng.integers(40, 97, size=2)
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    return root


class StepTimer(pl.Callback):
    """Wall time of every training step, from one step's start to the next one's."""

    def __init__(self) -> None:
        self.starts: list[tuple[float, float]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.starts.append(clocks())

    def on_train_epoch_end(self, trainer, module) -> None:
        self.starts.append(clocks())


def clocks() -> tuple[float, float]:
    """Wall time and the CPU time of the whole process (all its threads)."""
    return time.perf_counter(), time.process_time()


def images_per_second(starts: list[tuple[float, float]], warmup: int, batch: int) -> np.ndarray:
    """(wall, CPU) images/s: the batch over the median step time after warm-up."""
    return batch / np.median(np.diff(np.array(starts[warmup:]), axis=0), axis=0)


def fit_args(args, run_dir: str) -> list[str]:
    return [
        "fit", "--config", training.resolve_config("miniature"), "--data.root", str(args.data),
        "--data.batch_size", str(args.batch_size), "--data.num_workers", str(args.num_workers),
        "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", str(args.steps), "--trainer.limit_val_batches", "0",
        "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", run_dir,
        *args.fit_args,
    ]  # fmt: skip


def run_fit(args) -> np.ndarray:
    """Images/s of the LightningCLI path of `vgg-repro fit` (default loggers, progress bar)."""
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as run_dir:
        training.VGGCLI(
            training.VGGClassifier,
            training.ImageFolderDataModule,
            args=fit_args(args, run_dir),
            trainer_defaults={"callbacks": [timer]},
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
        )
    return images_per_second(timer.starts, args.warmup, args.batch_size)


def run_plain(args) -> np.ndarray:
    """Images/s of a hand-written loop over the same model, data module and batches."""
    pl.seed_everything(1, verbose=False)
    cfg = {"scale_min": 37, "scale_max": 37, "crop_size": 32}
    dm = training.ImageFolderDataModule(
        str(args.data), batch_size=args.batch_size, num_workers=args.num_workers, **cfg
    )
    dm.setup("fit")
    model = training.VGGClassifier("A", dm.num_classes, width=0.0625, crop_size=32, init="xavier")
    optimizer = model.configure_optimizers()
    model.train()
    starts = []
    for step, batch in enumerate(dm.train_dataloader()):
        starts.append(clocks())
        x, y = dm.on_after_batch_transfer(batch, 0)
        loss = F.cross_entropy(model.net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step + 1 == args.steps:
            break
    starts.append(clocks())
    return images_per_second(starts, args.warmup, args.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="image folder (default: synthetic JPEGs)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("fit_args", nargs="*", help="more `vgg-repro fit` options, after --")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            per_class = -(-args.steps * args.batch_size // 10)  # enough for one epoch of steps
            args.data = write_jpegs(Path(tmp) / "data", classes=10, per_class=per_class)
        plain, fit = [], []
        for _ in range(args.repeats):
            plain.append(run_plain(args))
            fit.append(run_fit(args))
    plain, fit = np.array(plain).max(0), np.array(fit).max(0)
    print(
        f"{args.steps - args.warmup} steps timed x batch {args.batch_size}, "
        f"{args.threads} torch threads, {args.num_workers} loader workers; best of {args.repeats}"
    )
    print(f"{'':22}{'wall images/s':>15}{'CPU images/s':>15}")
    print(f"{'plain PyTorch loop':22}{plain[0]:15.1f}{plain[1]:15.1f}")
    print(f"{'vgg-repro fit':22}{fit[0]:15.1f}{fit[1]:15.1f}")
    ratio = fit / plain
    print(f"{'ratio fit / plain':22}{ratio[0]:15.3f}{ratio[1]:15.3f}")
    print(f"Lightning overhead (CPU time per image): {100 * (1 / ratio[1] - 1):+.1f}%")


if __name__ == "__main__":
    main()
