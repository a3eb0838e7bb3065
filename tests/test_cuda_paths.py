"""Issue 18: the branches that only a GPU takes by default, run on the CPU where PyTorch allows.

Training (:class:`~vgg_repro.training.module.VGGClassifier`): channels_last, torch.compile,
fused SGD; the data module's pinned memory; evaluation in bfloat16 with channels_last;
bench/bench_perf.py's fast path and its JPEG decoding "on the device". Each is forced on
here through its own switch (a setting, a ``parts`` argument, or a patched device
check), and compared with the plain path it replaces. What no CPU can run (nvJPEG,
cuDNN, a CUDA fused kernel) waits for bench/gpu_run.sh on a GPU.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torchvision
from PIL import Image
from test_evaluation import one_thread  # noqa: F401  (autouse: one torch thread)

from vgg_repro import checkpoints, models
from vgg_repro.data import transforms as T
from vgg_repro.evaluation import runner
from vgg_repro.training.datamodule import ImageFolderDataModule
from vgg_repro.training.module import VGGClassifier

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["ant", "bee", "cat", "dog"]


@pytest.fixture(scope="module")
def bench_perf():
    spec = importlib.util.spec_from_file_location("bench_perf", ROOT / "bench" / "bench_perf.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_perf"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_perf", None)


def classifier(**kwargs) -> VGGClassifier:
    torch.manual_seed(0)
    return VGGClassifier("A", len(CLASSES), width=1 / 16, crop_size=32, init="xavier", dropout=0,
                         **kwargs)  # fmt: skip


def trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, limit_val_batches=0, **kwargs)  # fmt: skip


def batch(n: int = 8, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, size, size, generator=g) * 50, torch.arange(n) % len(CLASSES)


def first_conv(net: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def is_channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


# --- training: channels_last, fused SGD, compile


def test_channels_last_training_step_equals_the_contiguous_one():
    x, y = batch()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    runs = {}
    for layout in (None, True):  # None: the default, contiguous on a CPU, channels_last on CUDA
        module = classifier(channels_last=layout)
        seen = []
        first_conv(module.net).register_forward_hook(
            lambda m, args, out, seen=seen: seen.append(is_channels_last(args[0]))
        )
        trainer(max_steps=1).fit(module, train_dataloaders=loader)
        assert seen == [bool(layout)]  # the input too, not only the weights
        assert is_channels_last(first_conv(module.net).weight) is bool(layout)
        with torch.no_grad():
            runs[layout] = (module.eval()(x), [p.detach().clone() for p in module.parameters()])
    (plain, plain_params), (fast, fast_params) = runs[None], runs[True]
    assert torch.allclose(fast, plain, rtol=1e-4, atol=1e-4)
    for a, b in zip(fast_params, plain_params, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    start = classifier().parameters()
    assert not all(torch.equal(a, b) for a, b in zip(plain_params, start, strict=True))  # it moved


def test_the_cuda_optimizer_is_one_fused_sgd_with_the_same_update(monkeypatch):
    module = classifier()
    assert module.configure_optimizers().defaults["fused"] is None  # CPU: PyTorch's foreach
    cuda = torch.device("cuda")
    monkeypatch.setattr(VGGClassifier, "device", property(lambda self: cuda))
    fused = module.configure_optimizers()
    assert fused.defaults["fused"] is True
    monkeypatch.undo()
    # The recipe's fused SGD (momentum, weight decay) steps as the foreach one, on the CPU
    # kernel that PyTorch has had since 2.4.
    other = classifier()
    plain = other.configure_optimizers()
    x, y = batch()
    for _ in range(3):
        for m, opt in ((module, fused), (other, plain)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            try:
                opt.step()
            except RuntimeError as err:  # an older PyTorch without the CPU kernel
                pytest.skip(f"fused SGD has no CPU kernel in torch {torch.__version__}: {err}")
    for a, b in zip(module.parameters(), other.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_compiled_channels_last_net_predicts_as_the_eager_one():
    """``model.compile: true`` (Inductor on the CPU: C++ kernels, a compiler needed)."""
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("gcc")):
        pytest.skip("torch.compile's CPU backend needs a C++ compiler; none on PATH")
    x, _ = batch(4)
    eager = classifier().eval()
    with torch.no_grad():
        expected = eager(x)
    module = classifier(compile=True, channels_last=True)
    keys = list(module.state_dict())
    try:
        out = trainer().predict(module, torch.utils.data.DataLoader(x, batch_size=4))
    except Exception as err:  # the toolchain, not our code: say which
        if "torch._dynamo" in type(err).__module__ or "torch._inductor" in type(err).__module__:
            pytest.skip(f"torch.compile does not work on this CPU: {type(err).__name__}: {err}")
        raise
    assert module.net._compiled_call_impl is not None  # compiled in place
    assert list(module.state_dict()) == keys  # checkpoints keep their names
    assert is_channels_last(first_conv(module.net).weight)
    assert torch.allclose(out[0], expected, rtol=1e-4, atol=1e-4)


# --- data: pinned memory


def write_folder(root: Path, per_class: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (44, 52, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.jpg")
    return root


def test_pin_memory_follows_cuda_and_a_pinned_loader_runs_on_a_cpu(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "data")
    kw = {"scale_min": 40, "scale_max": 40, "crop_size": 32, "batch_size": 4, "num_workers": 0}
    dm = ImageFolderDataModule(str(root), **kw)
    dm.setup("fit")
    assert dm.train_dataloader().pin_memory is False  # the default on a CPU-only machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dm.train_dataloader().pin_memory is True  # and on a GPU machine
    monkeypatch.undo()
    pinned = ImageFolderDataModule(str(root), pin_memory=True, **kw)
    pinned.setup("fit")
    with pytest.warns(UserWarning, match="pin_memory"):  # PyTorch: no accelerator, not pinned
        images, labels, alpha = next(iter(pinned.train_dataloader()))
    x, y = pinned.on_after_batch_transfer([images, labels, alpha], 0)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and torch.isfinite(x).all()


# --- evaluation in bfloat16 with channels_last


def test_bf16_evaluation_gives_the_float32_errors(tmp_path):
    g = torch.Generator().manual_seed(3)
    root = tmp_path / "val"
    for i in range(12):
        h, w = [(40, 53), (53, 40), (45, 45)][i % 3]
        (root / CLASSES[i % 4]).mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(root / CLASSES[i % 4] / f"{i}.png")
    torch.manual_seed(0)
    net = models.build("A", 4, width=1 / 16, crop_size=32, init="xavier").eval()
    with torch.no_grad():
        net.classifier[-1].weight.mul_(50)  # peaked posteriors, as a trained net gives
    meta = checkpoints.model_meta(net, 1 / 16, CLASSES)
    path = tmp_path / "a.ckpt"
    checkpoints.atomic_save({checkpoints.META_KEY: meta, "state_dict": net.state_dict()}, path)
    results = {
        p: runner.evaluate_folder(
            [path], root, "dense+multi-crop", [32, 40], precision=p, keep_posteriors=True
        )
        for p in ("32", "bf16")
    }
    full, fast = results["32"], results["bf16"]
    assert (full["precision"], fast["precision"]) == ("32", "bf16")
    assert fast["posteriors"].dtype == torch.float32
    assert torch.allclose(fast["posteriors"].sum(1), torch.ones(12), atol=1e-4)
    assert (fast["posteriors"] - full["posteriors"]).abs().max() < 0.05
    for k in ("top1_error", "top5_error"):
        assert math.isfinite(fast[k])
        assert abs(fast[k] - full[k]) <= 100 / 12 + 1e-9  # at most one image changes its answer


# --- bench/bench_perf.py: the fast path's parts and decoding on the device


def test_bench_fast_path_is_cuda_only_by_default(bench_perf):
    assert bench_perf.fast_path(torch.device("cpu")) == frozenset()
    assert bench_perf.fast_path(torch.device("cuda")) == set(bench_perf.FAST_PATH)
    assert bench_perf.fast_path(torch.device("cuda"), fast=False) == frozenset()


def test_bench_training_step_with_bf16_channels_last_and_fused_sgd_on_a_cpu(bench_perf):
    cpu = torch.device("cpu")
    parts = {"bf16", "channels_last", "fused_sgd"}  # compile: see the classifier's test
    net = models.build("A", 4, width=1 / 16, crop_size=32, init="xavier")
    r = bench_perf.train_throughput(net, 4, 32, 1, cpu, fast=True, parts=parts, warmup=2)
    assert r["parts"] == sorted(parts) and r["images_per_s"] > 0
    assert len(r["warmup_losses"]) == 2 and all(map(math.isfinite, r["warmup_losses"]))
    assert is_channels_last(first_conv(net).weight)
    with pytest.raises(ValueError, match="unknown fast-path parts"):
        bench_perf.train_throughput(net, 4, 32, 1, cpu, fast=True, parts={"fp8"})
    dense = models.build("A", 4, width=1 / 16, crop_size=32, init="xavier")
    r = bench_perf.eval_throughput(dense, 37, 1, 1, cpu, fast=True, parts={"bf16"})
    assert r["precision"] == "bf16" and r["dense"]["images_per_s"] > 0


def test_bench_decodes_a_batch_of_jpegs_on_the_device_as_the_cpu_decoder(bench_perf, tmp_path):
    bench_perf.write_jpegs(tmp_path, 6, (80, 60), classes=2)
    files = sorted(tmp_path.rglob("*.jpg"))
    data = [f.read_bytes() for f in files]
    cpu = torch.device("cpu")
    encoded = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data]
    decoded = torchvision.io.decode_jpeg(encoded, device=cpu)  # the batched call of the GPU path
    for image, f in zip(decoded, files, strict=True):
        assert image.shape == (3, 60, 80) and image.dtype == torch.uint8
        pil = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
        assert (image.int() - pil.int()).abs().float().mean() < 2  # libjpeg either way
    constants = tuple(
        torch.tensor(v) for v in (T.IMAGENET_MEAN_RGB, T.IMAGENET_PCA_EIGVAL, T.IMAGENET_PCA_EIGVEC)
    )
    g = torch.Generator().manual_seed(0)
    x = bench_perf.decode_and_augment(data, (37, 73), 32, cpu, g, constants)
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.float32 and torch.isfinite(x).all()
    # Mean-subtracted pixels: about the images' mean minus ImageNet's, nowhere near 0..255.
    pixel_means = torch.stack([d.float().mean((1, 2)) for d in decoded]).mean(0)
    expected = pixel_means - constants[0]
    assert (x.mean((0, 2, 3)) - expected).abs().max() < 20
    again = bench_perf.decode_and_augment(data, (37, 73), 32, cpu,
                                          torch.Generator().manual_seed(0), constants)  # fmt: skip
    assert torch.equal(x, again)  # the augmentation follows its generator
