"""Where a miniature training epoch goes: forward and backward against everything else.

    python bench/bench_train_share.py                 # net A, the miniature's config
    python bench/bench_train_share.py --epochs 6 --out /tmp/share.json

Measures, in one run and on the committed data (``data/miniature``):

1. the net's forward and backward alone: a plain PyTorch loop of SGD steps on
   random 32-pixel batches, in images/s: the ceiling of any training loop;
2. ``vgg-repro fit --config A --config miniature`` for a few epochs, as the
   pipeline runs it, with the decoded images kept in memory
   (``data.cache_decoded=true``, the miniature's default) and without it (every
   image decoded from its JPEG at every epoch, one loader process, as before), in
   images/s of the training loop (Lightning's ``train/throughput``, the last epochs).

3. the training loader alone (crop, flip, colour draws, batching; one process) over
   one epoch of the cached images, with the cache holding the images rescaled to S
   as uint8 tensors, cropped by slicing (the default), against PIL images cropped
   by PIL (as before 2 December 2026): the same pixels, in images/s.

4. the same fit with channels-last tensors (``--model.channels_last=true``, which
   changes the floating point of training, so the pipeline does not use it yet),
   as a ratio to the contiguous fit.

It prints the share of the training loop's wall time spent in forward and
backward (throughput of 2 divided by that of 1) for both, and their ratio.
This is a benchmark: it asserts nothing. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def compute_throughput(batch: int = 64, steps: int = 60) -> float:
    """Images/s of forward + backward + SGD step of net A (width 1/16, 32-pixel crops)."""
    from vgg_repro import models

    net = models.build("A", 10, 0.0625, 0.0, crop_size=32, init="xavier")
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(batch, 3, 32, 32) * 60, torch.randint(0, 10, (batch,))
    for _ in range(10):  # warm-up
        torch.nn.functional.cross_entropy(net(x), y).backward()
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return batch * steps / (time.perf_counter() - start)


def fit_throughput(epochs: int, extra: list[str]) -> float:
    """Mean train/throughput (images/s) of the last epochs of a miniature fit of net A."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "vgg_repro.cli", "fit", "--config", "A", "--config", "miniature",
            f"--data.root={ROOT / 'data' / 'miniature'}", f"--trainer.max_epochs={epochs}",
            f"--trainer.default_root_dir={tmp}", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", "--model.dropout=0.0", *extra,
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        tsv = Path(tmp) / "dvclive" / "plots" / "metrics" / "train" / "throughput.tsv"
        values = [float(line.split("\t")[1]) for line in tsv.read_text().splitlines()[1:]]
    tail = values[len(values) // 2 :]  # after the first epoch's decoding
    return sum(tail) / len(tail)


def loader_throughput(tensor_cache: bool, epochs: int = 3) -> float:
    """Images/s of the miniature's training loader (net A's S = 37) after its first epoch."""
    from vgg_repro.data import transforms as T
    from vgg_repro.data.images import ImageFolder, SeededSampler

    class PILCache(T.TrainTransform):
        accepts_rescaled_tensor = False

    kind = T.TrainTransform if tensor_cache else PILCache
    data = ImageFolder(ROOT / "data" / "miniature" / "train", kind(37, 37, 32), cache_decoded=True)
    sampler = SeededSampler(data, seed=1)
    loader = torch.utils.data.DataLoader(data, batch_size=64, sampler=sampler, drop_last=True)
    rates = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        n = sum(len(labels) for _, labels, _ in loader)
        rates.append(n / (time.perf_counter() - start))
    return max(rates[1:])  # the first epoch decodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    compute = compute_throughput()
    cached = fit_throughput(args.epochs, [])
    decoded = fit_throughput(args.epochs, ["--data.cache_decoded=false", "--data.num_workers=1"])
    channels_last = fit_throughput(args.epochs, ["--model.channels_last=true"])
    loader_tensor, loader_pil = loader_throughput(True), loader_throughput(False)
    result = {
        "loader_tensor_cache_images_per_s": round(loader_tensor, 1),
        "loader_pil_cache_images_per_s": round(loader_pil, 1),
        "speedup_loader_tensor_over_pil": round(loader_tensor / loader_pil, 3),
        "forward_backward_images_per_s": round(compute, 1),
        "fit_cached_images_per_s": round(cached, 1),
        "fit_decoding_every_epoch_images_per_s": round(decoded, 1),
        "share_forward_backward_cached": round(cached / compute, 3),
        "share_forward_backward_decoding": round(decoded / compute, 3),
        "speedup_cached_over_decoding": round(cached / decoded, 3),
        "fit_channels_last_images_per_s": round(channels_last, 1),
        "speedup_channels_last_over_contiguous": round(channels_last / cached, 3),
        "cpu_cores": len(os.sched_getaffinity(0)),
    }
    for k, v in result.items():
        print(f"{k}: {v}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
