"""The stages of the DVC pipeline (``dvc.yaml``), one small function each.

``dvc repro`` runs them in the order of the paper's experiment graph (Sec. 3.1,
4.1 to 4.4); each is also a command, run from the repository root::

    python -m vgg_repro.pipeline check-data       # the data against data.dvc
    python -m vgg_repro.pipeline train A s256     # net A from random init
    python -m vgg_repro.pipeline train D s384     # fine-tuned from D at S=256
    python -m vgg_repro.pipeline evaluate D jitter
    python -m vgg_repro.pipeline fuse             # D+E (Table 6)
    python -m vgg_repro.pipeline report           # Tables 3-6 and the claims check
    python -m vgg_repro.pipeline pin-data         # accept a changed dataset on purpose

Every stage reads the active profile of ``params.yaml`` (``profile:``) and only
wires library functions: :func:`vgg_repro.training.main` trains,
:func:`vgg_repro.evaluation.evaluate_folder` evaluates, :mod:`vgg_repro.report`
writes the tables. A row of Table 3 is a net and a training scale, written
``(net, row)`` with ``row`` one of ``s256``, ``s384``, ``jitter`` (the paper's
S = 256, S = 384 and S in [256, 512]; the miniature uses its scaled values).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from vgg_repro.errors import ConfigError, DataError, VGGReproError

__all__ = [
    "PARENTS",
    "ROWS",
    "check_data",
    "dir_md5",
    "evaluate",
    "fuse",
    "fuse_posteriors",
    "load_profile",
    "main",
    "pin_data",
    "run_environment",
    "scaled",
    "train",
    "train_argv",
]

PARAMS = Path("params.yaml")
DATA_DVC = Path("data.dvc")
MODELS = Path("models")
METRICS = Path("metrics")
POSTERIORS = Path("posteriors")
PAPER_CROP = 224  # Sec. 2.1: the paper's 224x224 crops; the miniature scales by crop / 224

# The rows of Table 3 and where each net's weights start (Sec. 3.1): A and A-LRN
# from random init; B to E at S=256 from net A ("init_from_a": first four convs
# and the three FC layers); S=384 from the same net at S=256, and the jittered
# net from S=384 ("finetune_from": all layers).
ROWS: tuple[tuple[str, str], ...] = (
    ("A", "s256"),
    ("A-LRN", "s256"),
    ("B", "s256"),
    *((net, row) for net in "CDE" for row in ("s256", "s384", "jitter")),
)
PARENTS: dict[tuple[str, str], tuple[str, tuple[str, str]] | None] = {
    ("A", "s256"): None,
    ("A-LRN", "s256"): None,
    ("B", "s256"): ("init_from_a", ("A", "s256")),
    **{(n, "s256"): ("init_from_a", ("A", "s256")) for n in "CDE"},
    **{(n, "s384"): ("finetune_from", (n, "s256")) for n in "CDE"},
    **{(n, "jitter"): ("finetune_from", (n, "s384")) for n in "CDE"},
}
# The paper's shipped config of each row (vgg_repro/configs/*.yaml).
_CONFIG_ROW = {"s256": "S256", "s384": "S384", "jitter": "jitter"}
# Table 5 (multi-crop, multi-crop & dense) and Table 6 (fusion) use the jittered D and E.
MULTI_CROP_ROWS = {("D", "jitter"), ("E", "jitter")}
FUSION = (("D", "jitter"), ("E", "jitter"))


# --- parameters -------------------------------------------------------------------------


def load_profile(params: str | os.PathLike = PARAMS) -> tuple[str, dict]:
    """The active profile's name and settings from ``params.yaml``.

    Raises:
        ConfigError: no such file, or ``profile`` names no entry of ``profiles``.
    """
    path = Path(params)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run the pipeline from the repository root")
    doc = yaml.safe_load(path.read_text()) or {}
    name, profiles = doc.get("profile"), doc.get("profiles") or {}
    if name not in profiles:
        raise ConfigError(
            f"{path}: profile {name!r} is not one of the profiles defined there "
            f"({', '.join(profiles)}); e.g. dvc exp run -S profile=miniature"
        )
    return name, profiles[name]


def scaled(size: int, crop: int) -> int:
    """One of the paper's image sizes at a miniature crop size (the rule of the profiles).

    Every size is multiplied by ``crop / 224`` and rounded to the nearest pixel:

    >>> [scaled(s, 32) for s in (224, 256, 384, 512)]
    [32, 37, 55, 73]
    >>> scaled(256, 224)
    256
    """
    return int(math.floor(size * crop / PAPER_CROP + 0.5))


def row_config(net: str, row: str) -> str:
    """The shipped paper config of a row of Table 3.

    >>> row_config("A", "s256"), row_config("D", "jitter")
    ('A', 'D_jitter')
    """
    return net if net in ("A", "A-LRN", "B") else f"{net}_{_CONFIG_ROW[row]}"


def _read_config(name: str) -> dict:
    from vgg_repro.training import resolve_config

    return yaml.safe_load(Path(resolve_config(name)).read_text()) or {}


def model_dir(net: str, row: str) -> Path:
    """``models/NET/ROW``: the run (checkpoints, dvclive, csv) and the exported model.pt."""
    return MODELS / net / row


def model_path(net: str, row: str) -> Path:
    return model_dir(net, row) / "model.pt"


def posteriors_dir(net: str, row: str) -> Path:
    """``posteriors/NET-ROW``: the evaluation's posteriors, one ``.npy`` per protocol."""
    return POSTERIORS / f"{net}-{row}"


def metrics_path(net: str, row: str) -> Path:
    return METRICS / f"{net}-{row}.json"


# --- the data ---------------------------------------------------------------------------


def dir_md5(root: str | os.PathLike) -> tuple[str, int]:
    """A folder's hash as DVC 3 computes it (``.dir`` md5), and its number of files.

    The md5 of the JSON list of ``{"md5": file md5, "relpath": posix path}`` sorted by
    path; the same value as the ``md5`` that ``data.dvc`` records for the folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        entries.append({"md5": digest, "relpath": path.relative_to(root).as_posix()})
    entries.sort(key=lambda e: e["relpath"])
    blob = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(blob).hexdigest() + ".dir", len(entries)


def _read_data_dvc(path: Path = DATA_DVC) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing: it pins the embedded dataset; restore it from git")
    return yaml.safe_load(path.read_text()) or {}


def check_data(profile: dict, data_dvc: Path = DATA_DVC) -> dict:
    """Stage ``check_data``: refuse data that differs from the pinned one, before training.

    ``data.dvc`` imports the committed folder (``deps``) into the folder the
    pipeline reads (``outs``) and records, under ``meta.pinned``, the hash of the
    dataset this repository's results were made with. DVC itself re-imports a
    changed folder and rewrites ``deps``/``outs`` silently; ``meta.pinned`` it
    leaves alone, so comparing against it catches the change.

    Returns:
        What the training stages need to know: root, classes, image counts, hash.

    Raises:
        DataError: the data differs from ``data.dvc``'s pin (the message says how
            to restore it or how to re-pin on purpose), or the layout is wrong.
    """
    from vgg_repro import folders

    root = Path(profile["data"])
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        hint = (
            "run `dvc repro` (it imports data/miniature as declared in data.dvc)"
            if profile.get("pinned")
            else "set profiles.<profile>.data in params.yaml to the dataset's folder"
        )
        raise DataError(f"{root} has no train/ and val/ folders: {hint}")
    info: dict = {"root": str(root), "md5": None}
    if profile.get("pinned"):
        spec = _read_data_dvc(data_dvc)
        pinned = (spec.get("meta") or {}).get("pinned")
        outs = [o for o in spec.get("outs") or [] if Path(o.get("path", "")) == root]
        if not pinned or not outs:
            raise DataError(
                f"{data_dvc} does not pin {root} (no meta.pinned, or no output at {root}); "
                "restore it with `git checkout data.dvc`"
            )
        actual, nfiles = dir_md5(root)
        if actual != pinned:
            source = (spec.get("deps") or [{}])[0].get("path", "the source folder")
            raise DataError(
                f"the dataset in {root} (imported from {source}) differs from the one pinned "
                f"in {data_dvc}: md5 {actual} ({nfiles} files), pinned {pinned}. DVC has "
                f"re-imported it silently; the results in this repository were made with the "
                f"pinned data. To go back: `git checkout -- {source} {data_dvc}` then "
                f"`dvc repro`. To use the new data on purpose: `python -m vgg_repro.pipeline "
                f"pin-data`, then commit {source} and {data_dvc}."
            )
        info["md5"] = actual
        info["source"] = (spec.get("deps") or [{}])[0].get("path")
    classes = folders.check_classes(root, ("train", "val"))
    info["classes"] = classes
    info["images"] = {
        split: sum(
            1
            for c in classes
            for p in (root / split / c).iterdir()
            if p.name.lower().endswith(folders.IMAGE_EXTENSIONS)
        )
        for split in ("train", "val")
    }
    return info


def pin_data(data_dvc: Path = DATA_DVC) -> str:
    """Accept the current data on purpose: write its hash into ``data.dvc``'s ``meta.pinned``.

    Hashes the committed source folder (``deps``), which is what DVC imports.
    Only the ``pinned:`` line changes; DVC updates ``deps``/``outs`` on the next
    ``dvc repro``.
    """
    spec = _read_data_dvc(data_dvc)
    source = Path((spec.get("deps") or [{}])[0].get("path", ""))
    md5, _ = dir_md5(source)
    text = data_dvc.read_text()
    if re.search(r"^\s+pinned:", text, flags=re.M):
        text = re.sub(r"^(\s+pinned:\s*)\S+", lambda m: m.group(1) + md5, text, flags=re.M)
    else:
        text = text.rstrip("\n") + f"\nmeta:\n  pinned: {md5}\n"
    data_dvc.write_text(text)
    return md5


@contextlib.contextmanager
def subset_view(root: Path, limit: dict | int | None, splits=("train", "val")) -> Iterator[Path]:
    """``root`` itself, or a temporary tree of links to the first images of each class.

    ``limit``: images per class, one number for every split or ``{split: n}``.
    """
    if not limit:
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="vgg-repro-subset-") as tmp:
        for split in splits:
            n = limit if isinstance(limit, int) else limit.get(split)
            for cdir in sorted(p for p in (root / split).iterdir() if p.is_dir()):
                dst = Path(tmp) / split / cdir.name
                dst.mkdir(parents=True)
                files = sorted(p for p in cdir.iterdir() if p.is_file())
                for f in files[:n] if n else files:
                    (dst / f.name).symlink_to(f.resolve())
        yield Path(tmp)


# --- what a run depends on besides code, data and parameters ----------------------------

# The distributions whose versions can change a run's numbers or its files.
LIBRARIES = (
    "vgg-repro",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "jsonargparse",
    "numpy",
    "pillow",
    "dvc",
    "dvclive",
)


def run_environment() -> dict:
    """Python's and each library's version, and the machine type, as a run records them.

    Bit-identical numbers are promised only between runs with the same environment
    (floating point differs across library versions and CPUs), so every trained
    ``model.pt`` and every metrics file carries it.
    """
    import platform
    from importlib import metadata

    import torch

    versions = {"python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    # The wheel's metadata says 2.14.1 for every build; torch itself names the build
    # (2.14.1+cu130, +cpu), and the CUDA and cuDNN it was built with.
    versions["torch"] = str(torch.__version__)  # a TorchVersion: not a plain str to unpickle
    versions["cuda"] = torch.version.cuda
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    versions["cudnn"] = None if cudnn is None else str(cudnn)
    return {"versions": versions, "machine": platform.machine(), "system": platform.system()}


# --- training ---------------------------------------------------------------------------


def train_argv(net: str, row: str, profile: dict, data_root: Path) -> list[str]:
    """The ``vgg-repro fit`` arguments of one row of Table 3 under a profile.

    The recipe of the row comes from the paper's shipped config
    (``vgg_repro/configs/<row>.yaml``). With ``profile["config"]`` set (the
    miniature), that config is the base instead and the row's architecture,
    learning rate and training scale are taken from the paper's config, scales
    multiplied by ``crop / 224`` (:func:`scaled`). Parents always come from this
    pipeline's ``models/`` folder.
    """
    paper_cfg = _read_config(row_config(net, row))
    argv = ["fit", "--config", row_config(net, row)]
    run_dir = model_dir(net, row) / "run"
    if profile.get("config"):
        base = _read_config(profile["config"])
        crop = int(base["data"]["crop_size"])
        lo, hi = (scaled(int(paper_cfg["data"][k]), crop) for k in ("scale_min", "scale_max"))
        argv = ["fit", "--config", profile["config"]]
        argv += [f"--model.arch={net}", f"--model.lr={paper_cfg['model']['lr']}"]
        argv += [f"--data.scale_min={lo}", f"--data.scale_max={hi}"]
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
    for key, value in (settings.get("overrides") or {}).items():
        argv.append(f"--{key}={'null' if value is None else value}")
    argv.append("--trainer.enable_progress_bar=false")
    return argv


def _fingerprint(argv: list[str], data_md5: str | None) -> str:
    # What a resumable run is: its arguments minus the (possibly temporary) data path.
    stable = [a for a in argv if not a.startswith("--data.root=")]
    return hashlib.sha256(json.dumps([stable, data_md5]).encode()).hexdigest()[:16]


def export_model(ckpt: Path, out: Path, seed: int | None = None) -> dict:
    """Write the final network of a run to ``out`` with what evaluation needs to know.

    The file is a :mod:`vgg_repro.checkpoints` checkpoint whose ``vgg_repro`` entry
    also records the training scale and input normalisation (``scale_min``,
    ``scale_max``, ``mean_rgb``, ``std_rgb``), so that the test scales of
    Sec. 3.2 follow from the file alone, and the run's ``seed`` and
    :func:`run_environment`.
    """
    from vgg_repro import checkpoints
    from vgg_repro.evaluation import load_network

    net = load_network(ckpt)
    extra = {}
    if net.train_scale is not None:
        extra["scale_min"], extra["scale_max"] = net.train_scale
    extra |= {"mean_rgb": list(net.mean_rgb), "std_rgb": list(net.std_rgb)}
    extra |= {"seed": seed, "environment": run_environment()}
    return checkpoints.save_model(out, net.model, net.width, net.classes, **extra)


def train(net: str, row: str, profile: dict) -> Path:
    """Stages ``train_*``: train one row of Table 3 and export ``models/NET/ROW/model.pt``.

    ``models/NET/ROW/run`` is a persistent output: if a run with the same
    arguments was interrupted, it resumes from its ``last.ckpt``
    (``--ckpt_path``); otherwise it starts afresh.
    """
    from vgg_repro import training

    info = json.loads((MODELS / "data.json").read_text())
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
            training.main(argv)
            return model_path(net, row)
        run_dir.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"fingerprint": key, "finished": False}) + "\n")
        print("vgg-repro " + " ".join(argv), file=sys.stderr)
        training.main(argv)
    if not last.is_file():
        raise VGGReproError(f"training {net} {row} wrote no {last}")
    # seed_everything (the config's seed_everything) leaves the seed in PL_GLOBAL_SEED.
    seed = os.environ.get("PL_GLOBAL_SEED")
    export_model(last, model_path(net, row), None if seed is None else int(seed))
    state_file.write_text(json.dumps({"fingerprint": key, "finished": True}) + "\n")
    return model_path(net, row)


# --- evaluation -------------------------------------------------------------------------


def _protocols(net: str, row: str) -> dict[str, tuple[str, str]]:
    """Name -> (protocol, scales preset) for a row: Tables 3 and 4, plus 5 for D, E jittered."""
    out = {"single-scale": ("dense", "single"), "multi-scale": ("dense", "multi")}
    if (net, row) in MULTI_CROP_ROWS:
        out["multi-crop"] = ("multi-crop", "multi")
        out["dense+multi-crop"] = ("dense+multi-crop", "multi")
    return out


def _slim(result: dict, trained: dict[str, dict]) -> dict:
    """The parts of an evaluate_folder result that the report and `dvc metrics show` use.

    ``trained``: checkpoint path -> its training seed and environment.
    """
    keep = ("top1_error", "top5_error", "protocol", "scales", "n_images", "num_classes")
    slim = {k: result[k] for k in keep if k in result}
    slim["checkpoints"] = [
        {k: c.get(k) for k in ("path", "arch", "width", "train_scale", "test_scales")}
        | trained.get(c.get("path"), {})
        for c in result.get("checkpoints", [])
    ]
    for k in ("top1_error", "top5_error"):
        if not math.isfinite(float(slim[k])):
            raise VGGReproError(f"evaluation gave a non-finite {k}: {slim[k]}")
    return slim


def _evaluate(
    paths: list[Path], protocols: dict, profile: dict, posteriors: Path | None = None
) -> dict:
    """Evaluate with each protocol; with ``posteriors``, save each protocol's
    posteriors there as ``NAME.npy`` with ``labels.npy`` and ``files.txt``."""
    import numpy as np

    from vgg_repro.evaluation import evaluate_folder, load_network

    nets = [load_network(p) for p in paths]  # read once for every protocol
    trained = {
        n.source: {"seed": n.meta.get("seed"), "environment": n.meta.get("environment")}
        for n in nets
    }
    settings = profile.get("evaluate") or {}
    limit = settings.get("limit_per_class")
    out = {}
    if posteriors is not None:  # a stage output, which DVC deletes before a run too
        shutil.rmtree(posteriors, ignore_errors=True)
        posteriors.mkdir(parents=True)
    with subset_view(Path(profile["data"]), limit, splits=("val",)) as root:
        for name, (protocol, scales) in protocols.items():
            result = evaluate_folder(
                nets,
                root / "val",
                protocol,
                scales,
                batch_size=int(settings.get("batch_size", 16)),
                device=settings.get("device", "cpu"),
                workers=int(settings.get("workers") or 0),
                progress=False,
                keep_posteriors=posteriors is not None,
            )
            out[name] = _slim(result, trained)
            if posteriors is not None:
                np.save(posteriors / f"{name}.npy", result["posteriors"].numpy())
            print(f"{name}: top-1 {result['top1_error']:.2f}%, top-5 {result['top5_error']:.2f}%")
    if posteriors is not None:  # the same images, in the same order, for every protocol
        np.save(posteriors / "labels.npy", result["labels"].numpy())
        (posteriors / "files.txt").write_text("\n".join(result["files"]) + "\n")
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def evaluate(net: str, row: str, profile: dict) -> Path:
    """Stage ``evaluate``: single- and multi-scale dense evaluation (Tables 3, 4) of one
    net, and multi-crop, multi-crop & dense for the jittered D and E (Table 5).

    Writes the metrics and, under ``posteriors/NET-ROW``, the posteriors that
    :func:`fuse` averages.
    """
    out = _evaluate([model_path(net, row)], _protocols(net, row), profile, posteriors_dir(net, row))
    _write_json(metrics_path(net, row), out)
    return metrics_path(net, row)


# Table 6's protocols, each at the nets' multi-scale setting -> the evaluate stage's names.
FUSED_PROTOCOLS = {
    "dense": "multi-scale",
    "multi-crop": "multi-crop",
    "dense+multi-crop": "dense+multi-crop",
}


def fuse_posteriors(members: list[tuple[dict, Path]]) -> dict:
    """The fusion of Sec. 4.4 (Table 6) from saved evaluations: posteriors averaged.

    Args:
        members: per net, its evaluate stage's metrics (``metrics/NET-ROW.json``)
            and its posteriors folder (``posteriors/NET-ROW``).

    Returns:
        Per protocol of :data:`FUSED_PROTOCOLS`, the metrics in the evaluate
        stage's layout: the same numbers as ``evaluate_folder`` on all the nets at
        once, without running them again.

    Raises:
        VGGReproError: the nets were evaluated on different images, or a file is
            missing (run their evaluate stages first).
    """
    import numpy as np
    import torch

    from vgg_repro.evaluation import topk_error

    labels, files = None, None
    for _, folder in members:
        try:
            own = np.load(folder / "labels.npy"), (folder / "files.txt").read_text()
        except OSError as err:
            raise VGGReproError(f"cannot read the posteriors in {folder}: {err}") from None
        if labels is None:
            labels, files = own
        elif not (np.array_equal(own[0], labels) and own[1] == files):
            raise VGGReproError(
                f"{members[0][1]} and {folder} hold posteriors of different images: "
                "evaluate every fused net on the same data (`dvc repro`)"
            )
    out = {}
    for fused, name in FUSED_PROTOCOLS.items():
        try:
            each = [np.load(folder / f"{name}.npy") for _, folder in members]
            entries = [metrics[name] for metrics, _ in members]
        except (OSError, KeyError) as err:
            raise VGGReproError(
                f"no {name} evaluation to fuse ({err}): the fused nets need the multi-crop "
                "protocols of Table 5; run their evaluate stages first (`dvc repro`)"
            ) from None
        posteriors, target = torch.from_numpy(np.mean(each, axis=0)), torch.from_numpy(labels)
        out[fused] = {
            "top1_error": topk_error(posteriors, target, 1),
            "top5_error": topk_error(posteriors, target, 5),
            "protocol": entries[0]["protocol"],
            "scales": sorted({q for e in entries for q in e["scales"]}),
            "n_images": len(labels),
            "num_classes": int(posteriors.shape[1]),
            "checkpoints": [c for e in entries for c in e["checkpoints"]],
        }
    return out


def fuse(profile: dict) -> Path:
    """Stage ``fuse``: the D+E fusion of Table 6 (posteriors averaged), three protocols,
    from the posteriors their evaluate stages saved."""
    members = [(json.loads(metrics_path(*key).read_text()), posteriors_dir(*key)) for key in FUSION]
    out = fuse_posteriors(members)
    for name, result in out.items():
        print(f"{name}: top-1 {result['top1_error']:.2f}%, top-5 {result['top5_error']:.2f}%")
    path = METRICS / "fusion-D+E.json"
    _write_json(path, out)
    return path


# --- the command line -------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline STAGE ...``: run one stage of dvc.yaml."""
    parser = argparse.ArgumentParser(
        prog="python -m vgg_repro.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="stage", required=True)
    sub.add_parser("check-data", help="check the data against data.dvc; write models/data.json")
    sub.add_parser("pin-data", help="accept the current data: write its hash into data.dvc")
    for name in ("train", "evaluate"):
        p = sub.add_parser(name, help=f"{name} one row of Table 3")
        p.add_argument("net", choices=sorted({n for n, _ in ROWS}))
        p.add_argument("row", choices=("s256", "s384", "jitter"))
    sub.add_parser("fuse", help="evaluate the D+E fusion (Table 6)")
    sub.add_parser("report", help="write reports/results.json and reports/report.md")
    args = parser.parse_args(argv)
    try:
        if args.stage == "pin-data":
            print(f"data.dvc now pins {pin_data()}; commit the data folder and data.dvc")
            return 0
        name, profile = load_profile()
        if args.stage == "check-data":
            info = check_data(profile)
            info["profile"] = name
            _write_json(MODELS / "data.json", info)
            print(f"data OK: {info['root']}, {len(info['classes'])} classes, {info['images']}")
        elif args.stage in ("train", "evaluate"):
            if (args.net, args.row) not in PARENTS:
                raise ConfigError(f"Table 3 has no row {args.net} {args.row}")
            (train if args.stage == "train" else evaluate)(args.net, args.row, profile)
        elif args.stage == "fuse":
            fuse(profile)
        elif args.stage == "report":
            from vgg_repro import report

            report.main(name, profile)
    except VGGReproError as err:
        print(f"vgg_repro.pipeline {args.stage}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    status = main()
    # Everything is written and closed. Freezing the heap spares the interpreter's
    # final garbage collection over the millions of objects that importing torch and
    # Lightning creates: about 1 s of a 6 s training stage and 0.3 s of an
    # evaluation stage here, paid 27 times by the smoke `dvc repro`. Exit handlers
    # still run; only cyclic garbage is left to the operating system.
    import gc

    gc.freeze()
    sys.exit(status)
