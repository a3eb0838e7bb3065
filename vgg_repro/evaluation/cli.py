"""``vgg-repro evaluate``, ``features``, ``transfer``: the paper's testing over a data folder.

``evaluate`` is Sec. 3.2 and Tables 3 to 6; ``features`` and ``transfer`` are
Appendix B (descriptors of fixed nets, and a linear SVM on them)::

    vgg-repro evaluate --ckpt runs/D/last.ckpt --data imagenet/val \\
        --protocol dense --scales multi --output metrics.json
    vgg-repro evaluate --ckpt D.ckpt --ckpt E.ckpt --data imagenet/val \\
        --protocol dense+multi-crop --scales 256,384,512          # fusion, Table 6
    vgg-repro evaluate --torchvision vgg16 --weights vgg16-397923af.pth \\
        --data imagenet/val --scales 256,384,512                  # torchvision's weights
    vgg-repro features --ckpt D.pt --ckpt E.pt --data caltech/train --out train.npy
    vgg-repro features --ckpt D.pt --ckpt E.pt --data caltech/test --out test.npy
    vgg-repro transfer --features train.npy test.npy              # Table 11

``evaluate`` prints the result in the layout of the paper's tables
(:func:`vgg_repro.evaluation.tables.render_table`) and writes the metrics of
:func:`vgg_repro.evaluation.runner.evaluate_folder` with ``--output``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from vgg_repro import files
from vgg_repro.errors import ConfigError
from vgg_repro.evaluation.networks import load_network, load_torchvision
from vgg_repro.evaluation.protocols import PROTOCOLS
from vgg_repro.evaluation.runner import PRECISIONS, evaluate_folder
from vgg_repro.evaluation.tables import render_table

__all__ = [
    "default_workers",
    "features_main",
    "main",
    "predict_main",
    "split_folder",
    "transfer_main",
]

# Appendix B: the descriptors at Q = 256, 384, 512 (for the paper's 224 crops).
PAPER_DESCRIPTOR_SCALES = (256, 384, 512)


def default_workers(cores: int | None = None) -> int:
    """``--workers``' default: no worker process on 2 cores or fewer, else up to 8.

    Measured on 2 cores (net A of the miniature, one test scale, its 1,500
    validation images): 726 images/s with ``--workers 0``, 309 with 2. The workers
    compete with the net for the same cores, and decoding small JPEGs is cheap.

    >>> default_workers(2), default_workers(16)
    (0, 8)
    """
    cores = (os.cpu_count() or 1) if cores is None else cores
    return 0 if cores <= 2 else min(8, cores)


def split_folder(root: str | os.PathLike, split: str | None = None) -> Path:
    """The split folder to read: ``ROOT/SPLIT`` for a dataset root, or ROOT itself.

    A dataset root (``ROOT/train``, ``ROOT/val``...) gives its ``split`` folder,
    ``val`` by default (``test`` if it has no ``val``); a folder of class folders
    is used as it is, as ``fit``'s ``--data.root`` and ``evaluate``'s ``--data``
    both mean.
    """
    root = Path(root)
    if split is not None:
        if not (root / split).is_dir():
            raise ConfigError(f"--split {split}: {root / split} is not a folder")
        return root / split
    for name in ("val", "test"):
        if (root / name).is_dir() and (root / "train").is_dir():
            return root / name
    return root


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        "--data.root",
        dest="data",
        required=True,
        metavar="ROOT",
        help="a dataset root (ROOT/train, ROOT/val...: the split is --split, by default "
        "val) or one split's folder, ROOT/CLASS/IMAGE (e.g. imagenet/val)",
    )
    parser.add_argument("--split", default=None, help="the split of a dataset root (default: val)")


def _device(name: str) -> str:
    """``--device``: ``auto`` resolved, anything else checked before any work.

    >>> _device("cpu")
    'cpu'
    >>> _device("gpu0")
    Traceback (most recent call last):
    ...
    vgg_repro.errors.ConfigError: --device 'gpu0' is not a device: give cpu, cuda, cuda:N or auto
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(name).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name!r} is not a device: give cpu, cuda, cuda:N or auto")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    return name


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro evaluate``: print the paper-format table, optionally write the metrics JSON."""
    parser = argparse.ArgumentParser(
        prog="vgg-repro evaluate",
        description="Top-1/top-5 error of one net, or the fusion of several, with the "
        "paper's test protocols (Sec. 3.2), printed in the layout of Tables 3 to 6.",
    )
    parser.add_argument(
        "--ckpt",
        "--ckpt_path",
        dest="ckpt",
        action="append",
        default=[],
        metavar="PATH",
        help="a vgg-repro checkpoint (model.pt or a Lightning .ckpt); repeat to fuse "
        "several nets (Table 6)",
    )
    parser.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="NAME",
        help="configuration each --ckpt must hold (once for all, or once per "
        "--ckpt); an error if a checkpoint holds another",
    )
    parser.add_argument(
        "--torchvision",
        metavar="NAME",
        help="also/instead evaluate torchvision's ImageNet weights for vgg11, "
        "vgg13, vgg16 or vgg19, read from --weights (nothing is downloaded)",
    )
    parser.add_argument("--weights", metavar="FILE", help="torchvision state dict (.pth)")
    parser.add_argument(
        "--classes",
        metavar="FILE|DIR",
        help="with --torchvision: the weights' class names in output order (one WNID "
        "per line, or ImageNet's train folder), so that a folder with a subset of "
        "ImageNet's classes maps to their outputs",
    )
    _add_data_arguments(parser)
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="dense",
        help="dense (Sec. 3.2), multi-crop (50 crops per scale) or both averaged",
    )
    parser.add_argument(
        "--scales",
        default="multi",
        metavar="single|multi|Q,Q,...",
        help="test scales Q: 'single' (Q=S; 384 for S in [256;512]), 'multi' "
        "({S-32,S,S+32}; {256,384,512}), both read from the checkpoint's "
        "training scale, or explicit values such as 256,384,512 (default: multi)",
    )
    parser.add_argument("--output", metavar="JSON", help="write the metrics here")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="images per forward pass (default 16; dense doubles it with flips)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes decoding and rescaling images (default: 0 on 2 cores or fewer, "
        "where the main process alone was faster, otherwise up to 8)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: auto)")
    parser.add_argument(
        "--paper-numbers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print the paper's numbers beside ours (default: on 1000 classes)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="bf16: bfloat16 autocast and channels-last, the default on a GPU; "
        "32: full precision, the default on a CPU",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if not args.ckpt and not args.torchvision:
        raise ConfigError(
            "nothing to evaluate: give --ckpt PATH or --torchvision NAME --weights FILE"
        )
    if bool(args.torchvision) != bool(args.weights):
        raise ConfigError("--torchvision NAME and --weights FILE go together")
    if args.arch and len(args.arch) not in (1, len(args.ckpt)):
        raise ConfigError(
            f"give --arch once (for every --ckpt) or once per --ckpt; got {len(args.arch)} "
            f"--arch for {len(args.ckpt)} --ckpt"
        )
    if args.batch_size < 1 or args.workers < 0:
        raise ConfigError("--batch-size must be >= 1 and --workers >= 0")
    archs = args.arch if len(args.arch) > 1 else (args.arch or [None]) * len(args.ckpt)
    nets = [load_network(p, a) for p, a in zip(args.ckpt, archs, strict=True)]
    if args.torchvision:
        nets.append(load_torchvision(args.torchvision, args.weights, args.classes))
    elif args.classes:
        raise ConfigError(
            "--classes goes with --torchvision (a vgg-repro checkpoint names its own)"
        )
    device = _device(args.device)
    metrics = evaluate_folder(
        nets,
        split_folder(args.data, args.split),
        args.protocol,
        args.scales,
        batch_size=args.batch_size,
        workers=args.workers,
        device=device,
        progress=False if args.quiet else None,
        precision=args.precision,
    )
    if args.output:
        files.write_json(args.output, metrics, sort_keys=False)
    print(render_table([metrics], paper_numbers=args.paper_numbers))
    print(
        f"\n{metrics['n_images']} images, {metrics['num_classes']} classes, "
        f"{metrics['images_per_second']:.1f} images/s on {metrics['device']}"
        + (f"; metrics written to {args.output}" if args.output else "")
    )
    return 0


def features_main(argv: list[str] | None = None) -> int:
    """``vgg-repro features``: the Appendix B descriptors of a folder of images."""
    from vgg_repro.data.transforms import scaled_size
    from vgg_repro.evaluation.descriptors import (
        AGGREGATIONS,
        describe_folder,
        load_descriptor_net,
        save_features,
    )
    from vgg_repro.evaluation.scales import PAPER_CROP, resolve_scales

    parser = argparse.ArgumentParser(
        prog="vgg-repro features",
        description="Image descriptors of Appendix B: each net without its last FC layer "
        "applied densely to the whole image at each scale Q, its FC7 activations averaged "
        "over positions and over the image and its mirror image, the scales stacked or "
        "averaged, then L2-normalised. Several nets are concatenated (Net-D & Net-E). "
        "Writes FILE.npy (one row per image) and FILE.json (the files, labels, classes).",
    )
    parser.add_argument(
        "--ckpt", action="append", default=[], metavar="PATH",
        help="a vgg-repro model.pt or Lightning checkpoint; repeat to concatenate nets",
    )  # fmt: skip
    parser.add_argument(
        "--torchvision", metavar="NAME",
        help="also/instead torchvision's ImageNet weights for vgg11, vgg13, vgg16 or vgg19, "
        "read from --weights (nothing is downloaded)",
    )  # fmt: skip
    parser.add_argument("--weights", metavar="FILE", help="torchvision state dict (.pth)")
    parser.add_argument(
        "--data", "--data.root", dest="data", required=True, metavar="ROOT",
        help="one split's images, ROOT/CLASS/IMAGE, or a dataset root with --split",
    )  # fmt: skip
    parser.add_argument("--split", default=None, help="the split of a dataset root (train, test)")
    parser.add_argument("--out", required=True, metavar="FILE.npy", help="where to write them")
    parser.add_argument(
        "--scales", default=None, metavar="Q,Q,...",
        help="test scales Q (default: the paper's 256,384,512 scaled by crop/224: "
        "37,55,73 for the miniature's 32-pixel crops)",
    )  # fmt: skip
    parser.add_argument(
        "--aggregation", choices=AGGREGATIONS, default="stack",
        help="stack the scales' descriptors (Caltech in the paper) or average them (VOC)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: auto)")
    args = parser.parse_args(argv)
    if not args.ckpt and not args.torchvision:
        raise ConfigError("nothing to describe with: give --ckpt PATH or --torchvision NAME")
    if bool(args.torchvision) != bool(args.weights):
        raise ConfigError("--torchvision NAME and --weights FILE go together")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1; got {args.batch_size}")
    nets = [load_descriptor_net(p) for p in args.ckpt]
    if args.torchvision:
        nets.append(load_descriptor_net(args.weights, torchvision=args.torchvision))
    if args.scales is None:  # the pipeline's rule: the paper's Q scaled by crop / 224
        crop = nets[0].model.crop_size
        scales = [scaled_size(q, crop, PAPER_CROP) for q in PAPER_DESCRIPTOR_SCALES]
    else:
        scales = resolve_scales(args.scales, nets[0])
    device = _device(args.device)
    root = Path(args.data)
    if args.split is None and (root / "train").is_dir():
        raise ConfigError(
            f"{root} is a dataset root: give --split train or --split test (each split "
            "gets its own descriptor file)"
        )
    described = describe_folder(
        nets,
        split_folder(root, args.split),
        scales,
        aggregation=args.aggregation,
        batch_size=args.batch_size,
        device=device,
    )
    out = save_features(
        args.out, described, nets=[n.source for n in nets], scales=scales,
        aggregation=args.aggregation,
    )  # fmt: skip
    n, dim = described["features"].shape
    print(f"{n} descriptors of {dim} dimensions ({len(nets)} nets, Q = {scales}) written to {out}")
    return 0


def transfer_main(argv: list[str] | None = None) -> int:
    """``vgg-repro transfer``: a linear SVM on fixed descriptors (Appendix B)."""
    from vgg_repro.evaluation.descriptors import load_features
    from vgg_repro.evaluation.transfer import DEFAULT_CS, transfer

    parser = argparse.ArgumentParser(
        prog="vgg-repro transfer",
        description="Train a linear SVM on the descriptors of a training split (C chosen "
        "by cross-validation on it) and score it on a test split, the nets fixed: mean "
        "class accuracy for single-label data (Caltech), mAP for multi-label (VOC).",
    )
    parser.add_argument(
        "--features", nargs=2, required=True, metavar=("TRAIN.npy", "TEST.npy"),
        help="descriptors written by vgg-repro features for the two splits",
    )  # fmt: skip
    parser.add_argument(
        "--c", dest="cs", default=",".join(f"{c:g}" for c in DEFAULT_CS), metavar="C,C,...",
        help="values of the SVM's C to cross-validate (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--output", metavar="JSON", help="write the metrics here")
    args = parser.parse_args(argv)
    try:
        cs = [float(c) for c in args.cs.split(",") if c.strip()]
    except ValueError:
        raise ConfigError(f"--c {args.cs!r}: give positive numbers, e.g. 0.1,1,10") from None
    if args.folds < 2:
        raise ConfigError(f"--folds must be at least 2; got {args.folds}")
    train, test = (load_features(p) for p in args.features)
    result = transfer(train, test, cs=cs, folds=args.folds)
    if args.output:
        files.write_json(args.output, result, sort_keys=False)
    se = f" ± {result['std_error']:.1f}" if result.get("std_error") is not None else ""
    name = "mean class accuracy" if result["metric"] == "mean_class_accuracy" else "mAP"
    print(
        f"{name}: {result['value']:.1f}%{se} on {result['n_test']} test images of "
        f"{result['num_classes']} classes (C = {result['C']:g}, chosen by {result['folds']}-fold "
        f"cross-validation on {result['n_train']} training images)"
        + (f"; metrics written to {args.output}" if args.output else "")
    )
    return 0


def predict_main(argv: list[str] | None = None) -> int:
    """``vgg-repro predict``: the five most likely classes of each image (dense evaluation)."""
    from vgg_repro.data.images import load_image
    from vgg_repro.evaluation.protocols import (
        ScoreMapNet,
        average_posteriors,
        dense_evaluate,
        rescale,
    )
    from vgg_repro.evaluation.scales import resolve_scales

    parser = argparse.ArgumentParser(
        prog="vgg-repro predict",
        description="Classify images with a trained net by dense evaluation (Sec. 3.2): "
        "the whole image and its mirror image at each test scale, posteriors averaged. "
        "Prints the five most likely classes of each image with their posteriors.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument(
        "--ckpt", "--ckpt_path", dest="ckpt", metavar="PATH",
        help="a vgg-repro checkpoint (model.pt or a Lightning .ckpt)",
    )  # fmt: skip
    parser.add_argument("--torchvision", metavar="NAME", help="vgg11, vgg13, vgg16 or vgg19")
    parser.add_argument("--weights", metavar="FILE", help="torchvision state dict (.pth)")
    parser.add_argument(
        "--classes", metavar="FILE|DIR", help="with --torchvision: the class names in order"
    )
    parser.add_argument(
        "--scales", default="single", metavar="single|multi|Q,Q,...",
        help="test scales Q, as for evaluate (default: single, the net's own)",
    )  # fmt: skip
    parser.add_argument("--top", type=int, default=5, help="how many classes to print")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: auto)")
    args = parser.parse_args(argv)
    if bool(args.ckpt) == bool(args.torchvision):
        raise ConfigError("give --ckpt PATH, or --torchvision NAME --weights FILE (one of them)")
    if args.torchvision and not args.weights:
        raise ConfigError("--torchvision NAME and --weights FILE go together")
    if args.top < 1:
        raise ConfigError(f"--top must be at least 1; got {args.top}")
    if args.ckpt:
        net = load_network(args.ckpt)
    else:
        net = load_torchvision(args.torchvision, args.weights, args.classes)
    scales = resolve_scales(args.scales, net)
    device = _device(args.device)
    member = ScoreMapNet(net.model, net.mean_rgb, net.std_rgb).to(device).eval()
    names = net.classes or [str(i) for i in range(net.model.num_classes)]
    k = min(args.top, len(names))
    with torch.inference_mode():
        for path in args.images:
            image = load_image(path)
            per_scale = [dense_evaluate(member, rescale(image, q)[None].to(device)) for q in scales]
            posteriors = average_posteriors(per_scale)[0].cpu()
            top = posteriors.topk(k)
            ranked = ", ".join(
                f"{names[i]} {p:.3f}"
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            )
            print(f"{path}: {ranked}")
    return 0
