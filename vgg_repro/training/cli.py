"""``vgg-repro fit|validate|test``: the training recipe on LightningCLI.

The Sec. 3.1 recipe is stated once, in ``vgg_repro/configs/recipe.yaml``; each row
of Table 3 is a small config that states only what differs (net, S, parent,
learning rate), and a profile such as ``miniature`` is laid over a row by
LightningCLI's own merging of several ``--config`` files. A shipped config is
named without its folder or ``.yaml``, and the recipe comes first by itself::

    vgg-repro fit --config A                          # Table 3, net A, S=256
    vgg-repro fit --config D_S384                     # starts from runs/D_S256 (lr 1e-3)
    vgg-repro fit --config D_S384 --config miniature  # the same row, scaled down for a CPU
    vgg-repro fit --config miniature --trainer.max_epochs 3 --data.root data/miniature
    vgg-repro fit --config A --ckpt_path last         # resume the same run
    vgg-repro fit --config D_S384 --print_config      # the whole merged configuration
    vgg-repro validate --config A --ckpt_path runs/A/checkpoints/last.ckpt

``--config D_S384`` reads ``recipe.yaml`` then ``D_S384.yaml``; a config file of
your own (a path) is read as it is.

Several GPUs, several nodes: Lightning's own flags; ``data.batch_size`` stays the
*global* batch (per device = batch / (devices x nodes x accumulate_grad_batches))::

    vgg-repro fit --config D_S256 --trainer.devices 4 --trainer.strategy ddp
    # torchrun (one launcher per node; Lightning reads the torchrun environment):
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m vgg_repro.cli fit --config D_S256 --trainer.devices 4 --trainer.num_nodes 2 \\
        --trainer.strategy ddp
    # SLURM (sbatch script; Lightning detects SLURM; one task per GPU):
    #   #SBATCH --nodes=2 --ntasks-per-node=4 --gpus-per-node=4
    #   srun vgg-repro fit --config D_S256 --trainer.devices 4 --trainer.num_nodes 2 \\
    #       --trainer.strategy ddp

Outputs, under ``trainer.default_root_dir``: ``checkpoints/last.ckpt`` (and the
latest epoch's), ``dvclive/`` (DVCLive, ``dvcyaml=False``), ``csv/version_N/``
(``metrics.csv`` and the resolved ``config.yaml``) and, with
``data.skip_bad_files``, ``skipped_files.txt``.

Exact resume: data order and augmentation are functions of (seed, epoch, sample)
(:class:`~vgg_repro.data.images.SeededSampler`) and dropout noise is reseeded from
(seed, epoch, rank) at each epoch's first step, so ``--ckpt_path last`` after a stop
at an epoch boundary reproduces the uninterrupted run (bit for bit on the CPU with
``trainer.deterministic: true``); optimizer, schedule and epoch come back from the
checkpoint.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import logging
import os
import sys
import warnings
import zipfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from jsonargparse import ActionConfigFile
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.plugins import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from vgg_repro.errors import CheckpointError, ConfigError
from vgg_repro.files import atomic_write
from vgg_repro.training.datamodule import ImageFolderDataModule
from vgg_repro.training.module import VGGClassifier

__all__ = [
    "CONFIG_DIR",
    "VGGCLI",
    "AtomicCheckpointIO",
    "expand_configs",
    "main",
    "resolve_config",
    "shipped_configs",
]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
RECIPE = "recipe"  # Sec. 3.1, the base of every other shipped config


def shipped_configs() -> list[str]:
    """The names of the shipped configs: the recipe, the rows of Table 3, the profiles.

    >>> {"recipe", "A", "D_S384", "miniature"} <= set(shipped_configs())
    True
    """
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(name_or_path: str) -> str:
    """A shipped config's path from its name (``A``, ``D_S384``...), or the path itself."""
    if Path(name_or_path).is_file():
        return name_or_path
    for candidate in (name_or_path, f"{name_or_path}.yaml"):
        if (CONFIG_DIR / candidate).is_file():
            return str(CONFIG_DIR / candidate)
    raise ConfigError(
        f"no config file or shipped config named {name_or_path!r}; "
        f"shipped: {', '.join(shipped_configs())}"
    )


def _is_shipped(path: str) -> bool:
    return Path(path).resolve().parent == CONFIG_DIR


def expand_configs(argv: list[str]) -> list[str]:
    """``--config NAME`` as paths, with the recipe laid first under any shipped config.

    Only names and paths change; LightningCLI merges the files in order, later
    ones overriding earlier ones.
    """
    out: list[str] = []
    recipe = resolve_config(RECIPE)
    have_recipe = False
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else None
        value = None
        if prev in ("--config", "-c"):
            value = arg
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        if value is None:
            out.append(arg)
            continue
        path = resolve_config(value)
        is_recipe = Path(path).resolve() == Path(recipe).resolve()
        if _is_shipped(path) and not have_recipe and not is_recipe:
            # Before the --config flag that precedes this value.
            out[-1:] = ["--config", recipe, "--config"] if prev else ["--config", recipe]
        have_recipe |= is_recipe or _is_shipped(path)
        out.append(path if prev else f"--config={path}")
    return out


# --ckpt_path values that Lightning resolves itself, from the run folder.
_LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


def check_ckpt_path(value: str | None) -> None:
    """Refuse a ``--ckpt_path`` file that is missing or no checkpoint, in one line,
    before LightningCLI reads it (its own errors are tracebacks).

    A checkpoint is a zip archive (``torch.save``); that is all this checks, so a
    large checkpoint is not read twice.
    """
    if value is None or str(value) in _LIGHTNING_CKPT_NAMES:
        return
    path = Path(value)
    if not path.is_file():
        raise ConfigError(
            f"--ckpt_path={value} does not exist: give a checkpoint file, or "
            "--ckpt_path last to resume the run in trainer.default_root_dir"
        )
    if not zipfile.is_zipfile(path):
        empty = path.stat().st_size == 0
        why = "the file is empty" if empty else "not a file written by torch.save"
        raise CheckpointError(f"--ckpt_path={value} is not a checkpoint ({why})")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each file atomically.

    Lightning serialises a checkpoint and then writes it over the target, so a full
    disk or a kill mid-write leaves a truncated ``.ckpt`` (and may spoil
    ``last.ckpt``, the file that ``--ckpt_path last`` resumes from). Here the file
    appears complete or not at all (:func:`vgg_repro.files.atomic_write`); a path
    with a scheme (``s3://``...) goes to Lightning's own writer.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if "://" in str(path) or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_write(path, binary=True, sync=True) as f:
            torch.save(checkpoint, f)


def _earlier_run(root: Path, ckpt_dir: Path) -> Path | None:
    """The logs or checkpoint of a run already in ``root``, which a new fit would overwrite."""
    logs = root / "dvclive"
    if logs.is_dir() and any(logs.iterdir()):
        return logs
    last = ckpt_dir / "last.ckpt"
    return last if last.is_file() else None


# Environment variables that torchrun, SLURM and other launchers set in every process.
_LAUNCHERS = ("MASTER_ADDR", "WORLD_SIZE", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "LSB_JOBID")


def _is_helper_process() -> bool:
    """Whether this is a second, third... process of a run on several devices or nodes.

    Those start once the first has set the run folder up (Lightning's DDP launcher
    re-runs the command), so the checks of that folder are the first process's alone.
    """
    ranks = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK")
    return any(os.environ.get(v, "0") not in ("", "0") for v in ranks)


class VGGCLI(LightningCLI):
    """LightningCLI with the links and defaults of vgg_repro."""

    def init_parser(self, **kwargs) -> LightningArgumentParser:
        """LightningCLI's parser, its ``--config`` help naming the shipped configs."""
        kwargs.setdefault("dump_header", [f"pytorch_lightning=={pl.__version__}"])
        parser = self.parser_class(**kwargs)
        parser.add_argument(
            "-c",
            "--config",
            action=ActionConfigFile,
            help="a shipped config by name (" + ", ".join(shipped_configs()) + ") or a "
            "YAML file; repeat to lay one over another (--config D_S256 --config miniature)",
        )
        return parser

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.crop_size", "model.crop_size")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        # The module prints one line on the net instead (VGGClassifier.on_fit_start).
        parser.set_defaults({"trainer.enable_model_summary": False})

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        nodes = cfg.trainer.num_nodes
        if isinstance(nodes, int) and nodes > 1 and not any(v in os.environ for v in _LAUNCHERS):
            # Lightning would wait for the other nodes to join, without a word, for ever.
            raise ConfigError(
                f"trainer.num_nodes={nodes} but no launcher started this process on "
                "several nodes: run it under torchrun or srun (see the Training page), or "
                "set trainer.num_nodes=1"
            )
        if cfg.checkpoint.dirpath is None:
            cfg.checkpoint.dirpath = str(Path(cfg.trainer.default_root_dir or ".") / "checkpoints")
        # A run killed while writing a checkpoint (SIGKILL, power cut) leaves the
        # temporary file of AtomicCheckpointIO behind; the next run clears it.
        for tmp in (
            () if _is_helper_process() else Path(cfg.checkpoint.dirpath).glob(".*.ckpt.*.tmp")
        ):
            tmp.unlink(missing_ok=True)

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        """The Trainer, with vgg_repro's default loggers and progress bar where none is set."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = config["trainer"]
        root = Path(trainer.get("default_root_dir") or ".")
        resume = bool(config.get("ckpt_path"))
        raw = self.config[self.subcommand] if self.subcommand else self.config
        ckpt_dir = Path(raw.checkpoint.dirpath or root / "checkpoints")
        earlier = _earlier_run(root, ckpt_dir)
        if self.subcommand == "fit" and not resume and earlier and not _is_helper_process():
            # A new run would overwrite the earlier one's DVCLive logs and last.ckpt.
            raise ConfigError(
                f"trainer.default_root_dir={root} already holds a run ({earlier}); resume "
                "it with --ckpt_path last, or give another trainer.default_root_dir (or "
                "delete the earlier run)"
            )
        if trainer.get("logger") in (None, True):  # default: CSV + DVCLive under the run folder
            from pytorch_lightning.loggers import CSVLogger

            from vgg_repro.training.dvclive_shim import FastSyncDVCLiveLogger

            # CSV first: trainer.log_dir, where config.yaml is saved. CSVLogger numbers
            # its versions itself; DVCLive's folder is one run's, so validate and test
            # next to a fit's logs write only the CSV ones.
            kwargs["logger"] = [CSVLogger(save_dir=str(root), name="csv")]
            if self.subcommand == "fit" or earlier is None:
                kwargs["logger"].append(
                    FastSyncDVCLiveLogger(
                        dir=str(root / "dvclive"),
                        dvcyaml=False,
                        log_model=False,
                        save_dvc_exp=False,
                        resume=resume,
                    )
                )
        if not trainer.get("plugins"):
            kwargs["plugins"] = [AtomicCheckpointIO()]
        callbacks = trainer.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
        bar = any(isinstance(c, ProgressBar) for c in callbacks)
        if trainer.get("enable_progress_bar") is not False and not bar:
            # Lightning's default Rich bar costs ~8% of a miniature CPU step
            # (bench/bench_fit.py); tqdm redrawn every 10 steps costs next to nothing.
            kwargs["callbacks"] = [*callbacks, TQDMProgressBar(refresh_rate=10)]
        try:
            return super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, ValueError, TypeError) as err:
            # The Trainer is built from the user's trainer.* settings alone: what it
            # refuses (devices=x,y on a CPU, num_nodes=-1...) is a setting to change.
            raise ConfigError(f"Lightning refused the trainer.* settings: {err}") from None


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro fit|validate|test [--config NAME_OR_PATH ...] [overrides]``."""
    argv = expand_configs(list(sys.argv[1:] if argv is None else argv))
    for i, arg in enumerate(argv):  # LightningCLI reads the file while it parses
        if arg == "--ckpt_path" and i + 1 < len(argv):
            check_ckpt_path(argv[i + 1])
        elif arg.startswith("--ckpt_path="):
            check_ckpt_path(arg.split("=", 1)[1])
    # argv may differ from sys.argv (a resolved config name); DDP's launcher re-runs sys.argv.
    warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within")
    quiet_log()
    try:
        _run_cli(argv)
    except argparse.ArgumentError as err:  # a mistyped or unknown option, a bad value
        raise ConfigError(_with_suggestion(str(err))) from None
    except MisconfigurationException as err:  # Lightning's own checks of the settings
        raise ConfigError(f"Lightning refused the settings: {err}") from None
    return 0


class _NoAdvert(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger, which every run printed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


def quiet_log() -> None:
    """Keep Lightning's log to what a run says about itself.

    Filtered: the advertisement above, and one deprecation warning that Lightning's own
    code raises inside torch (``isinstance(treespec, LeafSpec)``), which a user can do
    nothing about. Every other warning stays.
    """
    for handler in logging.getLogger("pytorch_lightning").handlers:
        if not any(isinstance(f, _NoAdvert) for f in handler.filters):
            handler.addFilter(_NoAdvert())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


def _option_names() -> list[str]:
    """Every ``--group.name`` the CLI takes, from the signatures it is built on."""
    groups = {
        "model": VGGClassifier,
        "data": ImageFolderDataModule,
        "trainer": pl.Trainer,
        "checkpoint": ModelCheckpoint,
    }
    names = ["--config", "--print_config", "--seed_everything", "--ckpt_path"]
    for group, cls in groups.items():
        names += [f"--{group}.{p}" for p in inspect.signature(cls.__init__).parameters]
    return names


def _with_suggestion(message: str) -> str:
    """jsonargparse's message, with the closest valid option for an unknown one.

    >>> _with_suggestion("unrecognized arguments: --model.lr_patienc 50")
    'unrecognized arguments: --model.lr_patienc 50; did you mean --model.lr_patience?'
    """
    message = " ".join(message.split())  # one line: jsonargparse's may span several
    unknown = [w.split("=")[0] for w in message.split() if w.startswith("--")]
    for word in unknown:
        close = difflib.get_close_matches(word, _option_names(), n=1, cutoff=0.75)
        if close:
            return f"{message}; did you mean {close[0]}?"
    return f"{message} (vgg-repro fit --print_config lists every option)"


# What each command's --help says before its long list of options.
_HELP_HEAD = {
    "fit": "Train a net with the paper's recipe (Sec. 3.1): a row of Table 3 is one shipped "
    "config, e.g. vgg-repro fit --config D_S256 --data.root /data/ILSVRC2012. "
    "--print_config prints the whole merged configuration; the documentation's "
    "Training page explains the settings. Every option follows.",
    "validate": "The validation error of a checkpoint: vgg-repro validate --config A "
    "--ckpt_path runs/A/checkpoints/last.ckpt. Every option follows.",
    "test": "The test-split error of a checkpoint, as validate. Every option follows.",
}


def _run_cli(argv: list[str]) -> None:
    VGGCLI(
        VGGClassifier,
        ImageFolderDataModule,
        args=argv,
        save_config_kwargs={"overwrite": True},
        # Exact option names: argparse would take --model.lr_patienc for lr_patience.
        parser_kwargs={
            "prog": "vgg-repro",
            "allow_abbrev": False,
            "exit_on_error": False,
            **{
                name: {
                    "description": _HELP_HEAD[name],
                    "usage": f"vgg-repro {name} [--config NAME_OR_FILE ...] [--KEY VALUE ...]",
                }
                for name in _HELP_HEAD
            },
        },
        auto_configure_optimizers=False,  # the recipe's SGD lives in the model
    )
