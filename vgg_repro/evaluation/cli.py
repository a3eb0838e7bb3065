"""``vgg-repro evaluate``: the paper's testing (Sec. 3.2, Tables 3 to 6) over a data folder.

    vgg-repro evaluate --ckpt runs/D/last.ckpt --data imagenet/val \\
        --protocol dense --scales multi --output metrics.json
    vgg-repro evaluate --ckpt D.ckpt --ckpt E.ckpt --data imagenet/val \\
        --protocol dense+multi-crop --scales 256,384,512          # fusion, Table 6
    vgg-repro evaluate --torchvision vgg16 --weights vgg16-397923af.pth \\
        --data imagenet/val --scales 256,384,512                  # torchvision's weights

It prints the result in the layout of the paper's tables
(:func:`vgg_repro.evaluation.tables.render_table`) and writes the metrics of
:func:`vgg_repro.evaluation.runner.evaluate_folder` with ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from vgg_repro.errors import ConfigError
from vgg_repro.evaluation.networks import load_network, load_torchvision
from vgg_repro.evaluation.protocols import PROTOCOLS
from vgg_repro.evaluation.runner import PRECISIONS, evaluate_folder
from vgg_repro.evaluation.tables import render_table

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro evaluate``: print the paper-format table, optionally write the metrics JSON."""
    parser = argparse.ArgumentParser(
        prog="vgg-repro evaluate",
        description="Top-1/top-5 error of one net, or the fusion of several, with the "
        "paper's test protocols (Sec. 3.2), printed in the layout of Tables 3 to 6.",
    )
    parser.add_argument(
        "--ckpt",
        action="append",
        default=[],
        metavar="PATH",
        help="a vgg-repro checkpoint; repeat to fuse several nets (Table 6)",
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
        "--data",
        required=True,
        metavar="ROOT",
        help="the split to evaluate, as ROOT/CLASS/IMAGE (e.g. imagenet/val)",
    )
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
        default=min(8, os.cpu_count() or 1),
        help="processes decoding and rescaling images",
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
        nets.append(load_torchvision(args.torchvision, args.weights))
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    metrics = evaluate_folder(
        nets,
        args.data,
        args.protocol,
        args.scales,
        batch_size=args.batch_size,
        workers=args.workers,
        device=device,
        progress=False if args.quiet else None,
        precision=args.precision,
    )
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        os.replace(tmp, out)
    print(render_table([metrics], paper_numbers=args.paper_numbers))
    print(
        f"\n{metrics['n_images']} images, {metrics['num_classes']} classes, "
        f"{metrics['images_per_second']:.1f} images/s on {metrics['device']}"
        + (f"; metrics written to {args.output}" if args.output else "")
    )
    return 0
