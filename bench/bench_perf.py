"""Speed of the package on whatever device it finds: one run, one table, one JSON.

    python bench/bench_perf.py                      # full-size on a GPU, small on a CPU
    python bench/bench_perf.py --out bench/perf.json --steps 20

Measures, in the same run:

1. training step throughput (images/s) and model FLOP utilisation of A, D and E:
   the fast path (bf16 autocast, channels_last, torch.compile, fused SGD, as
   ``vgg-repro fit`` uses on a GPU) against an fp32 eager plain PyTorch loop of
   torchvision's vgg16 (on a GPU; on a CPU, the same-width net D, since
   torchvision's nets have no width), as a ratio;
2. the input pipeline alone: decode + isotropic rescale with scale jittering +
   random crop + flip + colour shift + mean subtraction, from JPEG files the
   script writes itself (500x375, quality 90: ImageNet's typical size), on
   every CPU core through the package's own ImageFolder/DataLoader; then the same
   work with the JPEGs decoded on the device in batches (``torchvision.io.decode_jpeg``,
   nvJPEG on a GPU), the CPU workers only reading the files' bytes, and the rescale,
   crop, flip and colour shift done there too;
3. dense and multi-crop evaluation throughput at Q = 256, 384, 512;
4. peak device memory of each (on a CPU: the process's maximum resident memory so far).

The JSON file is rewritten after each measurement (``"complete": false`` until the
last), so a run stopped by a time limit still leaves what it measured.

On a CPU-only machine the same measurements run small (narrow nets, scaled
images) so that the script keeps working in CI; those figures say nothing about
a GPU. Model FLOPs are counted (3x the forward FLOPs of a training step), not
assumed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

from vgg_repro import evaluation, models
from vgg_repro.data import images as data_images
from vgg_repro.data import transforms as T
from vgg_repro.data.prepare import prepare

# Dense bf16 tensor-core peak, TFLOP/s (NVIDIA datasheets, without sparsity).
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process max RSS


# The parts of the fast path; ``fast_path`` says which a device uses.
FAST_PATH = ("bf16", "channels_last", "compile", "fused_sgd")


def fast_path(device: torch.device, fast: bool = True) -> frozenset[str]:
    """The fast path's parts used on ``device``: all of them on CUDA, none elsewhere.

    On a CPU they bring no speed (bf16, channels_last) or only compilation time
    (compile); the tests still run each of them there by passing ``parts``.
    """
    return frozenset(FAST_PATH) if fast and device.type == "cuda" else frozenset()


def _peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def train_throughput(
    net: torch.nn.Module,
    batch: int,
    size: int,
    steps: int,
    device: torch.device,
    fast: bool,
    parts: frozenset[str] | set[str] | None = None,
    warmup: int = 3,
) -> dict:
    """Images/s of SGD training steps on random data (the data pipeline is measured apart).

    ``parts``: the fast path's parts to use (default: :func:`fast_path`).
    """
    parts = fast_path(device, fast) if parts is None else frozenset(parts)
    if unknown := parts - set(FAST_PATH):
        raise ValueError(f"unknown fast-path parts {sorted(unknown)}")
    net = net.to(device).train()
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, net.classifier[-1].out_features, (batch,), device=device)
    fused = "fused_sgd" in parts
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4, fused=fused)
    if "channels_last" in parts:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step_net = torch.compile(net) if "compile" in parts else net
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in parts)
    losses = []

    def step() -> torch.Tensor:
        with autocast:
            loss = F.cross_entropy(step_net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    for _ in range(warmup):  # warm-up: compilation, cuDNN autotuning, allocator
        losses.append(step())
    _sync(device)
    _reset_peak(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "images_per_s": batch * steps / seconds,
        "peak_mib": _peak_mib(device),
        "parts": sorted(parts),
        "warmup_losses": [float(v) for v in losses],  # finite: the fast path computes
    }


def _write_jpeg(job: tuple[Path, int, int, int]) -> None:
    path, i, w, h = job
    rng = np.random.default_rng((0, i))  # one generator per image: any worker, same pixels
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    grad = xx[..., None] * rng.uniform(-0.3, 0.3, 3) + yy[..., None] * rng.uniform(-0.3, 0.3, 3)
    noise = rng.normal(0, 20, (h, w, 3))
    pixels = np.clip(base + grad + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def write_jpegs(folder: Path, count: int, size: tuple[int, int], classes: int = 4) -> None:
    """ImageNet-like JPEGs (smooth content plus noise, quality 90) in CLASS folders.

    Written by every CPU core: 2000 of them take most of a minute on one.
    """
    w, h = size
    jobs = []
    for i in range(count):
        out = folder / f"c{i % classes}"
        out.mkdir(parents=True, exist_ok=True)
        jobs.append((out / f"{i:05d}.jpg", i, w, h))
    workers = min(_cpu_workers(), max(1, count // 16))
    if workers == 1:
        for job in jobs:
            _write_jpeg(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_jpeg, jobs, chunksize=max(1, count // (4 * workers))))


def _cpu_workers() -> int:
    """Every CPU core this process may run on: one loader worker each."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def input_throughput(
    folder: Path, scale: tuple[int, int], crop: int, batch: int, device: torch.device
) -> dict:
    """Images/s of the training input pipeline on every CPU core (plus device-side colour)."""
    transform = T.TrainTransform(scale[0], scale[1], crop)
    dataset = data_images.ImageFolder(folder, transform)
    workers = _cpu_workers()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=data_images.SeededSampler(dataset, 1, 0, seed=0),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    mean = torch.tensor(T.IMAGENET_MEAN_RGB, device=device)
    eigval = torch.tensor(T.IMAGENET_PCA_EIGVAL, device=device)
    eigvec = torch.tensor(T.IMAGENET_PCA_EIGVEC, device=device)
    start, seen = time.perf_counter(), 0
    for images, _, alpha in loader:
        x = images.to(device, non_blocking=True).float()
        x = T.subtract_mean(T.colour_shift(x, alpha.to(device), eigval, eigvec), mean)
        seen += len(x)
    _sync(device)
    return {"images_per_s": seen / (time.perf_counter() - start), "workers": workers}


class _JpegBytes(torch.utils.data.Dataset):
    """The files' bytes, undecoded: decoding happens on the device, a batch at a time."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> bytes:
        # Plain bytes through the worker pipe: a batch of small tensors would be shared
        # through one file descriptor each, which runs out on large batches.
        return self.files[i].read_bytes()


def decode_and_augment(
    data: list[bytes],
    scale: tuple[int, int],
    crop: int,
    device: torch.device,
    g: torch.Generator,
    constants: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """One batch of JPEG files' bytes -> augmented, mean-subtracted ``(N, 3, crop, crop)``.

    The JPEGs are decoded on ``device`` in one call (nvJPEG on a GPU), and the rest
    of :class:`vgg_repro.data.transforms.TrainTransform` runs there too. ``constants``:
    mean RGB, PCA eigenvalues and eigenvectors, on ``device``.
    """
    mean, eigval, eigvec = constants
    encoded = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data]
    images = torchvision.io.decode_jpeg(encoded, device=device)  # one call per batch
    out = torch.empty(len(images), 3, crop, crop, device=device)
    s = torch.randint(scale[0], scale[1] + 1, (len(images),), generator=g).tolist()
    flips = (torch.rand(len(images), generator=g) < 0.5).tolist()
    for j, image in enumerate(images):
        size = evaluation.rescaled_size(*image.shape[-2:], s[j])
        x = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True)
        top = int(torch.randint(0, size[0] - crop + 1, (1,), generator=g))
        left = int(torch.randint(0, size[1] - crop + 1, (1,), generator=g))
        x = x[0, :, top : top + crop, left : left + crop]
        out[j] = x.flip(-1) if flips[j] else x
    alpha = (torch.randn(len(images), 3, generator=g) * T.COLOUR_SHIFT_STD).to(device)
    return T.subtract_mean(T.colour_shift(out, alpha, eigval, eigvec), mean)


def device_decode_throughput(
    folder: Path, scale: tuple[int, int], crop: int, batch: int, device: torch.device
) -> dict:
    """Images/s of the training input pipeline with JPEG decoding on ``device``.

    The same augmentation as :class:`vgg_repro.data.transforms.TrainTransform` (Sec. 3.1:
    isotropic rescale to a random S in [S_min, S_max], random crop, horizontal flip,
    colour shift, mean subtraction), with every step after reading the file run on
    the device (:func:`decode_and_augment`): the option for a GPU whose training
    step outruns the CPU decoders.
    """
    files = sorted(folder.rglob("*.jpg"))
    workers = _cpu_workers()
    loader = torch.utils.data.DataLoader(
        _JpegBytes(files), batch_size=batch, num_workers=workers, collate_fn=list, drop_last=True
    )
    g = torch.Generator().manual_seed(0)
    constants = tuple(
        torch.tensor(v, device=device)
        for v in (T.IMAGENET_MEAN_RGB, T.IMAGENET_PCA_EIGVAL, T.IMAGENET_PCA_EIGVEC)
    )
    start, seen = time.perf_counter(), 0
    for data in loader:
        x = decode_and_augment(data, scale, crop, device, g, constants)
        seen += len(x)
    _sync(device)
    return {"images_per_s": seen / (time.perf_counter() - start), "workers": workers}


def eval_throughput(
    net: models.VGG,
    q: int,
    batch: int,
    repeats: int,
    device: torch.device,
    fast: bool,
    parts: frozenset[str] | set[str] | None = None,
) -> dict:
    """Images/s of dense and of multi-crop evaluation of 4:3 images with shorter side Q.

    ``parts``: of the fast path, only ``bf16`` applies here (default: :func:`fast_path`).
    """
    parts = fast_path(device, fast) if parts is None else frozenset(parts)
    dense = models.to_dense(net.eval().to(device))
    dtype = torch.bfloat16 if "bf16" in parts else torch.float32
    images = torch.randn(batch, 3, q, q * 4 // 3, device=device)
    out = {}
    for name, protocol in [
        ("dense", evaluation.dense_evaluate),
        ("multi_crop", evaluation.multi_crop),
    ]:
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype, enabled=dtype != torch.float32),
        ):
            protocol(dense, images)  # warm-up
            _sync(device)
            _reset_peak(device)
            start = time.perf_counter()
            for _ in range(repeats):
                protocol(dense, images)
            _sync(device)
        seconds = time.perf_counter() - start
        out[name] = {"images_per_s": batch * repeats / seconds, "peak_mib": _peak_mib(device)}
    out["dense_over_multi_crop"] = out["dense"]["images_per_s"] / out["multi_crop"]["images_per_s"]
    out["precision"] = "bf16" if dtype == torch.bfloat16 else "32"
    return out


def _write(report: dict, out: str | Path, complete: bool) -> None:
    """The report so far, replaced atomically: a run stopped by a time limit keeps it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(report | {"complete": complete}, indent=2) + "\n")
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps")
    parser.add_argument("--out", default="bench/perf.json", help="JSON file to write")
    args = parser.parse_args(argv)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    gpu = device.type == "cuda"
    # Full size on a GPU (the paper's nets, 224 crops, per-GPU batch 256); on a CPU a
    # narrow miniature (1/16 width, 32 crops) so the script runs in about a minute.
    width, crop, batch = (1.0, 224, 256) if gpu else (0.0625, 32, 32)
    steps = args.steps or (20 if gpu else 10)
    scales = (256, 384, 512) if gpu else (37, 55, 73)  # miniature: S scaled by 32/224
    jitter = (256, 512) if gpu else (37, 73)
    if gpu:
        torch.backends.cudnn.benchmark = True
    peak = _peak_tflops(device)
    report: dict = {
        "device": torch.cuda.get_device_name(device) if gpu else platform.processor() or "cpu",
        "driver": torch.version.cuda if gpu else None,  # the CUDA runtime torch was built with
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if gpu else None,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cpu_cores": os.cpu_count(),
        "setting": {"width": width, "crop": crop, "batch": batch, "steps": steps},
        "fast_path": sorted(fast_path(device)),
        "train": {},
        "eval": {},
    }
    rows = []

    def add(name: str, r: dict) -> None:  # as it comes: a run cut short still shows it
        rows.append((name, r))
        print(f"{name}: {r['images_per_s']:.1f} images/s", file=sys.stderr, flush=True)

    for arch in ("A", "D", "E"):
        net = models.build(arch, width=width, crop_size=crop)
        flops = (
            3 * 2 * models.count_macs(models.build_meta(arch, width=width, crop_size=crop), crop)
        )
        try:
            r = train_throughput(net, batch, crop, steps, device, fast=True)
        except Exception as err:  # one GPU run: a failed compile must not lose the rest
            if "compile" not in fast_path(device):
                raise
            print(f"train {arch}: torch.compile failed ({err!r:.300}); eager", file=sys.stderr)
            torch._dynamo.reset()
            net = models.build(arch, width=width, crop_size=crop)
            parts = fast_path(device) - {"compile"}
            r = train_throughput(net, batch, crop, steps, device, fast=True, parts=parts)
            r["compile_error"] = f"{type(err).__name__}: {err}"[:1000]
        r["mfu"] = r["images_per_s"] * flops / (peak * 1e12) if peak else None
        report["train"][arch] = r
        add(f"train {arch} fast path", r)
        del net
        _write(report, args.out, complete=False)
    ref = torchvision.models.vgg16() if gpu else models.build("D", width=width, crop_size=crop)
    r = train_throughput(ref, batch, crop, steps, device, fast=False)
    report["train"]["reference_fp32_eager"] = r
    report["train"]["D_speedup_over_reference"] = (
        report["train"]["D"]["images_per_s"] / r["images_per_s"]
    )
    add("train reference fp32 eager (vgg16)", r)
    _write(report, args.out, complete=False)
    with tempfile.TemporaryDirectory() as tmp:
        count, size = (2000, (500, 375)) if gpu else (256, (500, 375))
        write_jpegs(Path(tmp) / "raw", count, size)
        r = input_throughput(Path(tmp) / "raw", jitter, crop, batch, device)
        decoded = device_decode_throughput(Path(tmp) / "raw", jitter, crop, batch, device)
        # `vgg-repro data prepare`: the same files shrunk once to the largest S.
        prepare(Path(tmp) / "raw", Path(tmp) / "prepared", max_side=jitter[1], progress=False)
        prepared = input_throughput(Path(tmp) / "prepared", jitter, crop, batch, device)
    report["input_pipeline"] = r
    report["input_pipeline_prepared"] = prepared
    report["input_pipeline_device_decode"] = decoded
    report["device_decode_over_train_D"] = (
        decoded["images_per_s"] / report["train"]["D"]["images_per_s"]
    )
    report["prepared_over_raw"] = prepared["images_per_s"] / r["images_per_s"]
    report["input_over_train_D"] = r["images_per_s"] / report["train"]["D"]["images_per_s"]
    add(f"input pipeline ({r['workers']} workers)", r)
    add(f"input pipeline, prepared to {jitter[1]}px", prepared)
    add(f"input pipeline, JPEG decoded on {device.type}", decoded)
    _write(report, args.out, complete=False)
    net = models.build("D", width=width, crop_size=crop)
    for q in scales:
        r = eval_throughput(net, q, 8 if gpu else 2, 5 if gpu else 2, device, fast=True)
        report["eval"][str(q)] = r
        add(f"eval dense Q={q}", r["dense"])
        add(f"eval multi-crop Q={q}", r["multi_crop"])
        _write(report, args.out, complete=False)
    print(f"device: {report['device']}  torch {torch.__version__}  width {width}, crop {crop}")
    print(f"{'measurement':<40}{'images/s':>12}{'peak MiB':>12}{'MFU':>8}")
    for name, r in rows:
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") else "-"
        print(
            f"{name:<40}{r['images_per_s']:>12.1f}{r.get('peak_mib', float('nan')):>12.0f}{mfu:>8}"
        )
    if gpu:
        print(f"D fast path / reference: {report['train']['D_speedup_over_reference']:.2f}x")
    else:  # the fast path's parts (bf16, channels_last, compile, fused SGD) are CUDA-only
        report["train"]["D_speedup_over_reference"] = None
        print("D fast path / reference: n/a on a CPU (both run fp32 eager)")
    print(f"input pipeline / D training step: {report['input_over_train_D']:.2f}x")
    print(f"input pipeline after data prepare / before: {report['prepared_over_raw']:.2f}x")
    print(
        f"input pipeline decoding on {device.type} / D training step: "
        f"{report['device_decode_over_train_D']:.2f}x"
    )
    for q in scales:
        print(
            f"dense / multi-crop at Q={q}: {report['eval'][str(q)]['dense_over_multi_crop']:.2f}x"
        )
    _write(report, args.out, complete=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
