"""Images/s of dense vs multi-crop evaluation for one network, at the same test scales.

The paper (Sec. 3.2) argues that dense evaluation is far cheaper than multi-crop,
which "requires network re-computation for each crop". This measures both on
synthetic 4:3 images (no data loading: the network's share of the cost) in one
run, and counts the multiply-accumulates of each, so the ratio can be quoted::

    python bench/bench_eval.py                                  # narrow D, CPU
    python bench/bench_eval.py --width 1 --device cuda --images 32 --batch-size 8

``--stage`` times instead the pipeline's evaluate stage for one row (the jittered D:
single- and multi-scale dense, multi-crop, multi-crop & dense) on a folder of
images, the way it ran before and after the evaluation runner was rebuilt: one
``evaluate_folder`` call per protocol (each image decoded once per protocol, and
dense and multi-crop computed again for their combination) against one
``evaluate_protocols`` pass. It prints both times and their ratio::

    python bench/bench_eval.py --stage --ckpt models/D/jitter/model.pt --data data/pinned/val

``--layouts`` times dense and multi-crop evaluation of the same net and images on
contiguous (NCHW) against channels-last (NHWC) tensors, the layout that evaluation
uses on every device::

    python bench/bench_eval.py --layouts --width 0.0625 --crop-size 32 --classes 10 \\
        --scales 37,55,73 --images 8

Not a test: timings depend on the machine. Random weights (cost does not depend on them).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vgg_repro import models
from vgg_repro.evaluation import dense_evaluate, multi_crop, multi_scale


def synthetic(n: int, q: int, device: torch.device) -> torch.Tensor:
    """N landscape 4:3 images with shorter side Q (the commonest ImageNet shape)."""
    return torch.randn(n, 3, q, q * 4 // 3, device=device)


def images_per_second(protocol, net, batches, repeats: int, device: torch.device) -> float:
    """Throughput of ``multi_scale(net, batches, protocol)`` over ``repeats`` runs."""
    multi_scale(net, batches, protocol)  # warm-up: allocator, kernel selection
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        multi_scale(net, batches, protocol)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * batches[0].shape[0] / (time.perf_counter() - start)


def gmacs_per_image(protocol, net, scales: list[int], device: torch.device) -> float:
    with FlopCounterMode(display=False) as counter:
        multi_scale(net, [synthetic(1, q, device) for q in scales], protocol)
    return counter.get_total_flops() / 2 / 1e9


def stage_seconds(ckpt: str, data: str, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` wall time of one row's evaluate stage, per protocol and in one pass."""
    from vgg_repro.evaluation import evaluate_folder, evaluate_protocols, load_network
    from vgg_repro.pipeline.evaluate import row_protocols

    net = load_network(ckpt)
    settings = row_protocols("D", "jitter")
    per_protocol, one_pass = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for protocol, scales in settings.values():
            evaluate_folder([net], data, protocol, scales, batch_size=64, progress=False)
        per_protocol.append(time.perf_counter() - start)
        start = time.perf_counter()
        evaluate_protocols([net], data, settings, batch_size=64, progress=False)
        one_pass.append(time.perf_counter() - start)
    return min(per_protocol), min(one_pass)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="D", help="configuration (default D, VGG-16)")
    parser.add_argument("--width", type=float, default=0.125, help="channel multiplier")
    parser.add_argument("--scales", default="256,384,512", help="test scales Q (Table 4/5)")
    parser.add_argument("--images", type=int, default=4, help="images per batch")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per protocol")
    parser.add_argument("--batch-size", type=int, default=200, help="crops per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--stage", action="store_true", help="time one row's evaluate stage")
    parser.add_argument("--layouts", action="store_true", help="channels-last against NCHW")
    parser.add_argument("--crop-size", type=int, default=224, help="the net's (miniature: 32)")
    parser.add_argument("--classes", type=int, default=1000, help="the net's (miniature: 10)")
    parser.add_argument("--ckpt", default="models/D/jitter/model.pt", help="with --stage")
    parser.add_argument("--data", default="data/pinned/val", help="with --stage: ROOT/CLASS/*")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.stage:
        before, after = stage_seconds(args.ckpt, args.data, args.repeats)
        print(f"evaluate stage of one row ({args.ckpt} on {args.data}), best of {args.repeats}:")
        print(f"  one evaluate_folder call per protocol  {before:8.2f} s")
        print(f"  one evaluate_protocols pass            {after:8.2f} s")
        print(f"  the pass is {before / after:.2f}x faster")
        return

    device = torch.device(args.device)
    scales = [int(q) for q in args.scales.split(",")]
    torch.manual_seed(0)
    model = models.build(
        args.arch, args.classes, width=args.width, crop_size=args.crop_size, init="xavier"
    )
    model = model.eval().to(device)
    net = models.to_dense(model)
    batches = [synthetic(args.images, q, device) for q in scales]

    def crops(n, x):
        return multi_crop(n, x, chunk=args.batch_size)

    if args.layouts:
        name = f"{args.arch} (width {args.width:g})"
        print(f"{name}, Q = {scales}, 4:3 images, {args.device}, {torch.get_num_threads()} threads")
        for label, protocol in (("dense", dense_evaluate), ("multi-crop", crops)):
            rates = []
            for layout in (torch.contiguous_format, torch.channels_last):
                laid = [x.contiguous(memory_format=layout) for x in batches]
                with torch.inference_mode():
                    rate = images_per_second(
                        protocol, net.to(memory_format=layout), laid, args.repeats, device
                    )
                rates.append(rate)
            print(
                f"  {label:<11} contiguous {rates[0]:8.2f} images/s, channels-last "
                f"{rates[1]:8.2f} images/s: {rates[1] / rates[0]:.2f}x"
            )
        return

    with torch.inference_mode():
        dense_rate = images_per_second(dense_evaluate, net, batches, args.repeats, device)
        crop_rate = images_per_second(crops, net, batches, args.repeats, device)
        dense_macs = gmacs_per_image(dense_evaluate, net, scales, device)
        crop_macs = gmacs_per_image(crops, net, scales, device)

    name = f"{args.arch} (width {args.width:g})"
    print(f"{name}, Q = {scales}, 4:3 images, {args.device}, {torch.get_num_threads()} threads")
    rows = [("dense (2 passes per scale)", dense_rate, dense_macs)]
    rows += [("multi-crop (50 crops per scale)", crop_rate, crop_macs)]
    for label, rate, macs in rows:
        print(f"  {label:<33}{rate:8.2f} images/s {macs:8.2f} GMACs/image")
    print(
        f"  dense is {dense_rate / crop_rate:.1f}x faster measured, "
        f"{crop_macs / dense_macs:.1f}x fewer multiply-accumulates"
    )


if __name__ == "__main__":
    main()
