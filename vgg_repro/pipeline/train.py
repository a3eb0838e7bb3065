"""Stages ``train_*``: train one row of Table 3 and export ``models/NET/ROW/model.pt``.

    python -m vgg_repro.pipeline.train A s256     # net A from random init
    python -m vgg_repro.pipeline.train D s384     # fine-tuned from D at S=256

The row's recipe is the shipped LightningCLI config of the row
(``vgg_repro/configs/D_S384.yaml``, laid over ``recipe.yaml``); a profile with
``config:`` (the miniature) lays its own config over it, by LightningCLI's merging
of several ``--config`` files. What the profile sets in ``params.yaml`` (epochs,
batch size, hardware, extra settings) and the pipeline's own paths (data, run
folder, parent checkpoint) are command-line overrides.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from vgg_repro import checkpoints
from vgg_repro.errors import VGGReproError
from vgg_repro.pipeline.common import (
    DATA_INFO,
    PARENTS,
    load_profile,
    model_dir,
    model_path,
    parse_row,
    run_environment,
    run_stage,
    subset_view,
)

__all__ = [
    "export_model",
    "main",
    "row_config",
    "train",
    "train_argv",
    "training_summary",
]

# The paper's config of each row (vgg_repro/configs/*.yaml).
_CONFIG_ROW = {"s256": "S256", "s384": "S384", "jitter": "jitter"}


def row_config(net: str, row: str) -> str:
    """The shipped config of a row of Table 3.

    >>> row_config("A", "s256"), row_config("D", "jitter")
    ('A', 'D_jitter')
    """
    return net if net in ("A", "A-LRN", "B") else f"{net}_{_CONFIG_ROW[row]}"


def train_argv(net: str, row: str, profile: dict, data_root: Path) -> list[str]:
    """The ``vgg-repro fit`` arguments of one row of Table 3 under a profile.

    Parents always come from this pipeline's ``models/`` folder.
    """
    argv = ["fit", "--config", row_config(net, row)]
    if profile.get("config"):
        argv += ["--config", profile["config"]]
    run_dir = model_dir(net, row) / "run"
    argv += [f"--data.root={data_root}", f"--trainer.default_root_dir={run_dir}"]
    argv += ["--model.init_from_a=null", "--model.finetune_from=null"]
    parent = PARENTS[(net, row)]
    if parent is not None:
        kind, source = parent
        argv.append(f"--model.{kind}={model_path(*source)}")
    settings = profile.get("train") or {}
    epochs = (settings.get("epochs") or {}).get(row if parent else "scratch")
    if epochs:
        argv.append(f"--trainer.max_epochs={epochs}")
    if settings.get("batch_size"):
        argv.append(f"--data.batch_size={settings['batch_size']}")
    hardware = settings.get("hardware") or {}
    for key in ("accelerator", "devices"):
        if hardware.get(key) is not None:
            argv.append(f"--trainer.{key}={hardware[key]}")
    if hardware.get("num_workers") is not None:
        argv.append(f"--data.num_workers={hardware['num_workers']}")
    if settings.get("seed") is not None:
        argv.append(f"--seed_everything={settings['seed']}")
    for key, value in (settings.get("overrides") or {}).items():
        argv.append(f"--{key}={'null' if value is None else value}")
    argv.append("--trainer.enable_progress_bar=false")
    return argv


def training_summary(loaded: dict) -> dict:
    """How a finished run ended, from its last Lightning checkpoint.

    ``epochs``: epochs trained in this run; ``lr_decreases``: the plateau schedule's
    decreases; ``plateau``: whether the schedule stopped the run (its validation error
    had stopped improving at the last rate, Sec. 3.1) rather than the epoch budget.
    """
    state = {}
    for key, value in (loaded.get("callbacks") or {}).items():
        if str(key).startswith("PlateauSchedule") and isinstance(value, dict):
            state = value
    hparams = loaded.get("hyper_parameters") or {}
    decreases = int(state.get("decreases", 0))
    most = int(hparams.get("max_lr_decreases", 3))
    return {
        "epochs": int(loaded.get("epoch", -1)) + 1,
        "lr_decreases": min(decreases, most),
        "plateau": decreases > most,
    }


def _fingerprint(argv: list[str], data_md5: str | None) -> str:
    # What a resumable run is: its arguments minus the (possibly temporary) data path.
    stable = [a for a in argv if not a.startswith("--data.root=")]
    return hashlib.sha256(json.dumps([stable, data_md5]).encode()).hexdigest()[:16]


def export_model(ckpt: Path, out: Path, seed: int | None = None) -> dict:
    """Write the final network of a run to ``out`` with what evaluation needs to know.

    The file is a :mod:`vgg_repro.checkpoints` checkpoint whose ``vgg_repro`` entry
    records, besides the network, the training scale and input normalisation
    (``scale_min``, ``scale_max``, ``mean_rgb``, ``std_rgb``; the Lightning
    checkpoint has them from the DataModule), so that the test scales of Sec. 3.2
    follow from the file alone, and the run's ``seed`` and :func:`run_environment`.
    """
    loaded = checkpoints.load_checkpoint(ckpt)
    model, meta = checkpoints.model_from_loaded(loaded, ckpt)
    extra = {k: meta[k] for k in ("scale_min", "scale_max", "mean_rgb") if k in meta}
    extra |= {"std_rgb": [1.0, 1.0, 1.0], "seed": seed, "environment": run_environment()}
    extra["training"] = training_summary(loaded)
    return checkpoints.save_model(out, model, meta["width"], meta["classes"], **extra)


def train(net: str, row: str, profile: dict) -> Path:
    """Train one row of Table 3 and export ``models/NET/ROW/model.pt``.

    ``models/NET/ROW/run`` is a persistent output: if a run with the same
    arguments was interrupted, it resumes from its ``last.ckpt``
    (``--ckpt_path``); otherwise it starts afresh.
    """
    from vgg_repro.training.cli import main as fit

    info = json.loads(DATA_INFO.read_text())
    run_dir = model_dir(net, row) / "run"
    state_file = run_dir / "pipeline-run.json"
    last = run_dir / "checkpoints" / "last.ckpt"
    limit = (profile.get("train") or {}).get("limit_per_class")
    # On several GPUs Lightning re-runs this command once per extra device (with
    # LOCAL_RANK / NODE_RANK set); only the first process prepares and exports.
    helper = any(int(os.environ.get(v, "0") or 0) for v in ("LOCAL_RANK", "NODE_RANK"))
    with subset_view(Path(profile["data"]), limit) as root:
        argv = train_argv(net, row, profile, root)
        key = _fingerprint(argv, info.get("md5"))
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        if state.get("fingerprint") == key and not state.get("finished") and last.is_file():
            argv.append(f"--ckpt_path={last}")
            if not helper:
                print(f"resuming {net} {row} from {last}", file=sys.stderr)
        elif run_dir.exists() and not helper:
            shutil.rmtree(run_dir)
        if helper:
            fit(argv)
            return model_path(net, row)
        run_dir.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"fingerprint": key, "finished": False}) + "\n")
        print("vgg-repro " + " ".join(argv), file=sys.stderr)
        fit(argv)
    if not last.is_file():
        raise VGGReproError(f"training {net} {row} wrote no {last}")
    # seed_everything (the config's seed_everything) leaves the seed in PL_GLOBAL_SEED.
    seed = os.environ.get("PL_GLOBAL_SEED")
    export_model(last, model_path(net, row), None if seed is None else int(seed))
    state_file.write_text(json.dumps({"fingerprint": key, "finished": True}) + "\n")
    return model_path(net, row)


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.train NET ROW``."""
    net, row = parse_row("python -m vgg_repro.pipeline.train", argv)
    _, profile = load_profile()
    train(net, row, profile)
    return 0


if __name__ == "__main__":
    run_stage("train", main)
