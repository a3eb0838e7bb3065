"""The ``vgg-repro`` command: a thin dispatcher over the package's modules.

Each subcommand lives next to the code it drives and is imported only when
called, so ``vgg-repro --help`` stays fast (no Lightning import). A subcommand
is a function ``main(argv: list[str]) -> int | None``.

    vgg-repro models                     # Table 1 and 2: layers, parameters, GMACs
    vgg-repro fit --config A             # train (LightningCLI)
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vgg_repro import __version__
from vgg_repro.errors import user_message

# name -> ("module:function", one-line help). Lightning's own subcommands get
# their name passed through as the first argument.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("vgg_repro.cli:models_main", "list the six configurations (Table 1, 2)"),
    "i18n": ("vgg_repro.i18n:main", "check the Arabic docs translation (coverage, glossary)"),
    "evaluate": ("vgg_repro.evaluation.cli:main", "error rates by the paper's test protocols"),
    "predict": (
        "vgg_repro.evaluation.cli:predict_main",
        "the most likely classes of images (dense evaluation)",
    ),
    "features": (
        "vgg_repro.evaluation.cli:features_main",
        "image descriptors of fixed nets (Appendix B)",
    ),
    "transfer": (
        "vgg_repro.evaluation.cli:transfer_main",
        "a linear SVM on descriptors, scored on a test split (Appendix B)",
    ),
    "fit": ("vgg_repro.training.cli:main", "train a net with the paper's recipe (LightningCLI)"),
    "validate": ("vgg_repro.training.cli:main", "validation error of a checkpoint (LightningCLI)"),
    "test": ("vgg_repro.training.cli:main", "test-split error of a checkpoint (LightningCLI)"),
    "data": ("vgg_repro.data.cli:main", "dataset tools: stats, convert-val, synth, prepare, split"),
}
LIGHTNING_COMMANDS = ("fit", "validate", "test")


def models_main(argv: list[str]) -> int:
    """Print Table 1's configurations with their weight layers, parameters and MACs."""
    from vgg_repro import models

    parser = argparse.ArgumentParser(prog="vgg-repro models", description=models_main.__doc__)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    parser.add_argument("--image-size", type=int, default=224, help="side for the MAC count")
    args = parser.parse_args(argv)
    aliases = {v: k for k, v in models.ALIASES.items()}
    rows = []
    for name in models.CFGS:  # build all first: a bad setting fails before any output
        net = models.build_meta(name, num_classes=args.num_classes, width=args.width)
        params = models.count_parameters(net)
        macs = models.count_macs(net, args.image_size) / 1e9
        layers = models.num_weight_layers(name)
        rows.append(f"{name:<7}{aliases[name]:<11}{layers:>14}{params:>14,}{macs:>8.2f}")
    header = f"{'config':<7}{'alias':<11}{'weight layers':>14}{'parameters':>14}{'GMACs':>8}"
    print("\n".join([header, "-" * len(header), *rows]))
    print(f"\nGMACs: multiply-accumulates of one {args.image_size}x{args.image_size} forward pass.")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vgg-repro",
        description="Reproduce Simonyan & Zisserman, 'Very Deep Convolutional Networks "
        "for Large-Scale Image Recognition' (ICLR 2015).",
        epilog="Run 'vgg-repro COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"vgg-repro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vgg-repro`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    if name in LIGHTNING_COMMANDS:
        rest = [name, *rest]
    try:
        return int(func(rest) or 0)
    except Exception as err:
        message = user_message(err)  # a user's error: one line; a bug: the traceback
        if message is None:
            raise
        print(f"vgg-repro {name}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vgg-repro {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
