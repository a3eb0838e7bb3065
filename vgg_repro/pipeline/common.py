"""What every stage of the pipeline shares: the profile, the rows of Table 3, the paths.

Kept small on purpose: every stage imports this module, so an edit here reruns
every stage, while an edit to one stage's module reruns that stage and what
depends on its outputs (``dvc.yaml`` lists each stage's code; a test checks the
lists against the imports).

A row of Table 3 is a net and a training scale, written ``(net, row)`` with ``row``
one of ``s256``, ``s384``, ``jitter`` (the paper's S = 256, S = 384 and S in
[256, 512]; the miniature uses its scaled values).
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from vgg_repro import files
from vgg_repro.errors import ConfigError, user_message

PARAMS = Path("params.yaml")
MODELS = Path("models")
METRICS = Path("metrics")
POSTERIORS = Path("posteriors")
REPORTS = Path("reports")
DATA_INFO = MODELS / "data.json"  # written by check_data, read by every later stage

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
# The paper's training scale of each row (Sec. 3.1), before a profile scales it.
PAPER_TRAIN_SCALE = {"s256": (256, 256), "s384": (384, 384), "jitter": (256, 512)}
# Table 5 (multi-crop, multi-crop & dense) and Table 6 (fusion) use the jittered D and E.
MULTI_CROP_ROWS = {("D", "jitter"), ("E", "jitter")}
FUSION = (("D", "jitter"), ("E", "jitter"))


# --- parameters -------------------------------------------------------------------------


# The keys of params.yaml, at every depth. A dict lists the keys a mapping may have
# (None: a value); FREE is a mapping whose keys are the user's (LightningCLI settings,
# the deviations' names); LIMIT is images per class, a number or one per split.
FREE, LIMIT = "free", "limit"
_EPOCHS = {"scratch": None, "s256": None, "s384": None, "jitter": None}
PARAMS_SCHEMA: dict = {
    "profile": None,
    "profiles": {
        FREE: {
            "config": None,
            "data": None,
            "pinned": None,
            "train": {
                "epochs": _EPOCHS,
                "batch_size": None,
                "seed": None,
                "overrides": FREE,
                "hardware": {"accelerator": None, "devices": None, "num_workers": None},
                "limit_per_class": LIMIT,
            },
            "evaluate": {
                "device": None,
                "batch_size": None,
                "workers": None,
                "limit_per_class": LIMIT,
            },
            "transfer": {
                "data": None,
                "pinned": None,
                "scales": None,
                "aggregation": None,
                "C": None,
                "folds": None,
                "batch_size": None,
                "device": None,
                "limit_per_class": LIMIT,
            },
            "deviations": {FREE: {"paper": None, "why": None}},
        }
    },
}
_SPLITS = {"train": None, "val": None, "test": None}


def check_params(doc: object, schema: object = PARAMS_SCHEMA, where: str = "") -> None:
    """Refuse a key of ``params.yaml`` that nothing reads: a typo would be dropped silently.

    >>> check_params({"profile": "smoke", "profiles": {"smoke": {"train": {"sed": 1}}}})
    Traceback (most recent call last):
    ...
    vgg_repro.errors.ConfigError: params.yaml: unknown key profiles.smoke.train.sed; did ...

    Raises:
        ConfigError: the first unknown key, with the closest valid one and the valid keys.
    """
    if schema == LIMIT:
        schema = _SPLITS if isinstance(doc, dict) else None
    if schema is None or schema == FREE:
        return
    if not isinstance(doc, dict):
        if doc is not None and FREE not in schema:
            raise ConfigError(
                f"{PARAMS}: {where or 'the file'} must be a mapping of "
                f"{', '.join(schema)}, not {doc!r}",
                where,
            )
        return
    if FREE in schema:
        for key, value in doc.items():
            check_params(value, schema[FREE], f"{where}.{key}" if where else str(key))
        return
    for key, value in doc.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"{PARAMS}: unknown key {name}{hint} (valid here: {', '.join(schema)})", name
            )
        check_params(value, schema[key], name)


def load_profile(params: str | os.PathLike = PARAMS) -> tuple[str, dict]:
    """The active profile's name and settings from ``params.yaml``.

    Every key of the file is checked first (:func:`check_params`), in every profile.

    Raises:
        ConfigError: no such file, an unknown key, or ``profile`` names no entry of
            ``profiles``.
    """
    path = Path(params)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run the pipeline from the repository root")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path} is not valid YAML{line}: fix the file") from None
    check_params(doc)
    name, profiles = doc.get("profile"), doc.get("profiles") or {}
    if name not in profiles:
        raise ConfigError(
            f"{path}: profile {name!r} is not one of the profiles defined there "
            f"({', '.join(profiles)}); e.g. dvc exp run -S profile=miniature",
            "profile",
        )
    return name, profiles[name]


def parse_row(prog: str, argv: list[str] | None) -> tuple[str, str]:
    """The ``NET ROW`` arguments of a stage that works on one row of Table 3.

    Raises:
        ConfigError: a net and training scale that are not a row of Table 3.
    """
    import argparse

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("net", choices=sorted({n for n, _ in ROWS}))
    parser.add_argument("row", choices=("s256", "s384", "jitter"))
    args = parser.parse_args(argv)
    if (args.net, args.row) not in PARENTS:
        raise ConfigError(f"Table 3 has no row {args.net} {args.row}")
    return args.net, args.row


def row_key(net: str, row: str) -> str:
    """The name of a row in files and stage names.

    >>> row_key("A-LRN", "s256")
    'A-LRN-s256'
    """
    return f"{net}-{row}"


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


def write_json(path: Path, obj: dict) -> None:
    """Write a JSON file atomically: a reader (or a killed stage) never sees half of it."""
    files.write_json(path, obj)


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
    return {
        "versions": versions,
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": cpu_kernels(),
    }


def cpu_kernels() -> dict:
    """The CPU and the kernel families that torch runs on it, which decide its rounding.

    ``model``: the CPU's name; ``capability``: the vector instructions ATen's kernels
    use (``AVX2``, ``AVX512``...); ``blas`` and ``onednn``: the libraries behind matrix
    products and convolutions, with their versions; ``threads``: torch's intra-op
    threads (a sum split over more threads is added in another order). Two machines
    that agree on all of these and on the library versions train bit-identical nets.
    """
    import platform
    import re

    import torch

    model = platform.processor() or None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            found = re.search(r"^model name\s*:\s*(.+)$", f.read(), flags=re.M)
        model = found.group(1).strip() if found else model
    except OSError:
        pass
    info = torch.__config__.parallel_info()
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", info)
    onednn = re.search(r"(?:oneDNN|MKL-DNN) (v[\d.]+)", info)
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {
        "model": model,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "blas": f"MKL {mkl.group(1)}" if mkl else (blas.group(1) if blas else None),
        "onednn": onednn.group(1) if onednn else None,
        "threads": torch.get_num_threads(),
    }


# --- running a stage --------------------------------------------------------------------


def stage_position(
    cmd: str, dvc_yaml: str | os.PathLike = "dvc.yaml"
) -> tuple[int, int, str] | None:
    """Where the stage that runs ``cmd`` stands in ``dvc.yaml``: ``(k, n, name)``.

    The stages in the file's order, each ``foreach`` expanded (``train_s256@B``);
    None if the file is missing or no stage runs ``cmd``.
    """
    path = Path(dvc_yaml)
    if not path.is_file():
        return None
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages") or {}
    expanded: list[tuple[str, str]] = []
    for name, spec in stages.items():
        if "foreach" not in spec:
            expanded.append((name, spec.get("cmd", "")))
            continue
        items = spec["foreach"]
        pairs = items.items() if isinstance(items, dict) else ((i, i) for i in items)
        for key, item in pairs:
            text = spec["do"].get("cmd", "").replace("${key}", str(key))
            text = text.replace("${item}", str(item))
            for field, value in item.items() if isinstance(item, dict) else ():
                text = text.replace(f"${{item.{field}}}", str(value))
            expanded.append((f"{name}@{key}", text))
    for k, (name, text) in enumerate(expanded, 1):
        if text.split() == cmd.split():
            return k, len(expanded), name
    return None


def run_stage(name: str, stage: Callable[[list[str]], object]) -> None:
    """Run a stage's ``main(argv)`` as a command: a user's error is one line, exit 2.

    Everything is written and closed when it returns. Freezing the heap spares the
    interpreter's final garbage collection over the millions of objects that
    importing torch and Lightning creates: about 1 s of a 6 s training stage and
    0.3 s of an evaluation stage here, paid 27 times by the smoke `dvc repro`. Exit
    handlers still run; only cyclic garbage is left to the operating system.
    """
    # The first line of every stage: which one it is, and where in the pipeline.
    where = stage_position(" ".join(["python", "-m", f"vgg_repro.pipeline.{name}", *sys.argv[1:]]))
    if where is not None:
        print(f"stage {where[0]} of {where[1]}: {where[2]}", flush=True)
    try:
        status = int(stage(sys.argv[1:]) or 0)
    except Exception as err:
        message = user_message(err)  # a user's error: one line; a bug: the traceback
        if message is None:
            raise
        print(f"vgg_repro.pipeline {name}: error: {message}", file=sys.stderr)
        status = 2
    gc.freeze()
    sys.exit(status)
