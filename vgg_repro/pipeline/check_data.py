"""Stage ``check_data``: refuse data that differs from the pinned dataset, before training.

    python -m vgg_repro.pipeline.check_data          # the data against data.dvc
    python -m vgg_repro.pipeline pin-data            # accept a changed dataset on purpose

Writes ``models/data.json`` (root, classes, image counts, hash), on which every
later stage depends, so a change of data reruns everything after passing the
check, and DVC does not hash the data folder once per stage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from vgg_repro.data import folders
from vgg_repro.errors import ConfigError, DataError
from vgg_repro.files import write_text
from vgg_repro.pipeline.common import DATA_INFO, PARAMS, load_profile, run_stage, write_json

__all__ = ["check_data", "dir_md5", "main", "pin_data"]

DATA_DVC = Path("data.dvc")


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
        info["md5"], info["source"] = verify_pinned(root, data_dvc)
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


def verify_pinned(root: Path, data_dvc: Path = DATA_DVC) -> tuple[str, str | None]:
    """The hash of ``root`` and its source folder, if ``data_dvc`` pins that hash.

    ``data_dvc`` (``data.dvc``, ``transfer.dvc``) imports a committed folder into
    ``root`` and records the hash the results were made with under ``meta.pinned``.

    Raises:
        DataError: ``root`` differs from the pin (the message says how to restore
            the pinned data or how to re-pin on purpose), or ``data_dvc`` pins nothing.
    """
    spec = _read_data_dvc(data_dvc)
    pinned = (spec.get("meta") or {}).get("pinned")
    outs = [o for o in spec.get("outs") or [] if Path(o.get("path", "")) == root]
    if not pinned or not outs:
        raise DataError(
            f"{data_dvc} does not pin {root} (no meta.pinned, or no output at {root}); "
            f"restore it with `git checkout {data_dvc}`"
        )
    source = (spec.get("deps") or [{}])[0].get("path", "the source folder")
    # First: a file deleted from the source stays in the persistent copy, which may
    # then still match the pin while the source does not.
    stale = _stale_files(root, Path(source))
    if stale:
        raise DataError(
            f"{root} holds {len(stale)} file{'' if len(stale) == 1 else 's'} that {source} no "
            f"longer has (the first: "
            f"{root / stale[0]}): {root} is a copy of {source} that DVC updates without "
            "deleting files, so that an edit there is never overwritten. Delete them, "
            f"or delete {root} and run `dvc repro` to make a fresh copy."
        )
    actual, nfiles = dir_md5(root)
    pin_arg = "" if Path(data_dvc) == DATA_DVC else f" {data_dvc}"
    if actual != pinned:
        raise DataError(
            f"the dataset in {root} (imported from {source}) differs from the one pinned "
            f"in {data_dvc}: md5 {actual} ({nfiles} files), pinned {pinned}. DVC has "
            f"re-imported it silently; the results in this repository were made with the "
            f"pinned data. To go back: `git checkout -- {source} {data_dvc}` then "
            f"`dvc repro`. To use the new data on purpose: `python -m vgg_repro.pipeline "
            f"pin-data{pin_arg}`, then commit {source} and {data_dvc}."
        )
    return actual, (spec.get("deps") or [{}])[0].get("path")


def _stale_files(root: Path, source: Path) -> list[str]:
    """Files under ``root`` (the copy) that are not under ``source``, as relative paths."""
    if not source.is_dir():
        return []
    have = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    return sorted(
        str(rel)
        for p in root.rglob("*")
        if p.is_file() and (rel := p.relative_to(root)) not in have
    )


def pin_data(data_dvc: Path = DATA_DVC) -> str:
    """Accept the current data on purpose: write its hash into ``meta.pinned`` of ``data_dvc``.

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
    write_text(data_dvc, text)  # atomic: a killed run leaves the old pin, never half a file
    return md5


def differing_keys(old: object, new: object, where: str = "") -> list[str]:
    """The dotted keys at which two parsed YAML documents differ.

    >>> differing_keys({"profile": "a", "x": {"y": 1}}, {"profile": "b", "x": {"y": 1, "z": 2}})
    ['profile', 'x.z']
    """
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [where]
    keys = list(old) + [k for k in new if k not in old]
    out: list[str] = []
    for key in keys:
        name = f"{where}.{key}" if where else str(key)
        out += differing_keys(old.get(key), new.get(key), name)
    return out


def undo_experiment_params(key: str | None, params: Path = PARAMS) -> bool:
    """Put ``params.yaml`` back as it was before a ``dvc exp run -S`` that set a bad value.

    ``dvc exp run -S KEY=VALUE`` writes the value into the workspace's ``params.yaml``
    (and reformats the file) before any stage runs, and leaves it there when a stage
    fails. Inside an experiment (DVC sets ``DVC_EXP_BASELINE_REV``) the file is restored
    from the experiment's baseline commit, but only if it differs from it at the bad
    key alone: a user's own uncommitted edits are never overwritten.

    Returns:
        Whether the file was restored.
    """
    rev = os.environ.get("DVC_EXP_BASELINE_REV")
    if not rev or not key or not params.is_file():
        return False
    try:
        shown = subprocess.run(
            ["git", "show", f"{rev}:{params.as_posix()}"], capture_output=True, text=True
        )
        if shown.returncode:
            return False
        before = yaml.safe_load(shown.stdout) or {}
        now = yaml.safe_load(params.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    changed = differing_keys(before, now)
    if not changed or any(k != key and not k.startswith(f"{key}.") for k in changed):
        return False
    write_text(params, shown.stdout)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.check_data [--pin]``."""
    parser = argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.check_data")
    parser.add_argument(
        "--pin", action="store_true", help="accept the current data: write its hash into DVC_FILE"
    )
    parser.add_argument(
        "dvc_file",
        nargs="?",
        default=str(DATA_DVC),
        metavar="DVC_FILE",
        help="with --pin: the file that pins the data (data.dvc, transfer.dvc)",
    )
    args = parser.parse_args(argv)
    if args.pin:
        path = Path(args.dvc_file)
        print(f"{path} now pins {pin_data(path)}; commit the data folder and {path}")
        return 0
    try:
        name, profile = load_profile()
    except ConfigError as err:
        if undo_experiment_params(err.key):
            raise ConfigError(
                f"{err} (params.yaml is back as it was before `dvc exp run -S`)", err.key
            ) from None
        raise
    info = check_data(profile)
    info["profile"] = name
    write_json(DATA_INFO, info)
    print(f"data OK: {info['root']}, {len(info['classes'])} classes, {info['images']}")
    return 0


if __name__ == "__main__":
    run_stage("check_data", main)
