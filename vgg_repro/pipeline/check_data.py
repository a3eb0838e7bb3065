"""Stage ``check_data``: refuse data that differs from the pinned dataset, before training.

    python -m vgg_repro.pipeline.check_data          # the data against data/pins.yaml
    python -m vgg_repro.pipeline pin-data            # accept a changed dataset on purpose
    python -m vgg_repro.pipeline pin-data transfer   # the same for the Appendix B data

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

__all__ = ["PINS", "check_data", "dir_md5", "main", "pin_data", "verify_pinned"]

PINS = Path("data") / "pins.yaml"


def dir_md5(root: str | os.PathLike) -> tuple[str, int]:
    """A folder's hash as DVC 3 computes it (``.dir`` md5), and its number of files.

    The md5 of the JSON list of ``{"md5": file md5, "relpath": posix path}`` sorted by
    path; the same value as the ``md5`` that ``dvc.lock`` records for the folder.
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


def _read_pins(path: Path = PINS) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing: it pins the embedded datasets; restore it from git")
    try:
        pins = (yaml.safe_load(path.read_text()) or {}).get("pins")
    except yaml.YAMLError as err:
        raise DataError(f"{path} is not valid YAML ({err}); restore it from git") from None
    if not isinstance(pins, dict) or not pins:
        raise DataError(f"{path} has no `pins:` mapping; restore it from git")
    return pins


def check_data(profile: dict, pins: Path = PINS) -> dict:
    """Stage ``check_data``: refuse data that differs from the pinned one, before training.

    The stages read a copy (``data/pinned``) of a dataset committed to git
    (``data/miniature``), which the ``copy_data`` stage keeps up to date; ``pins``
    (``data/pins.yaml``) records the hash of the dataset this repository's results
    were made with. A changed source is copied like any other, so comparing the copy
    against the pin catches the change.

    Returns:
        What the training stages need to know: root, classes, image counts, hash.

    Raises:
        DataError: the data differs from the pin (the message says how to restore it
            or how to re-pin on purpose), or the layout is wrong.
    """
    root = Path(profile["data"])
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        hint = (
            "run `dvc repro` (its copy_data stage copies data/miniature there)"
            if profile.get("pinned")
            else "set profiles.<profile>.data in params.yaml to the dataset's folder"
        )
        raise DataError(f"{root} has no train/ and val/ folders: {hint}")
    info: dict = {"root": str(root), "md5": None}
    if profile.get("pinned"):
        info["md5"], info["source"] = verify_pinned(root, pins)
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


def verify_pinned(root: Path, pins: Path = PINS) -> tuple[str, str]:
    """The hash of ``root`` and its source folder, if ``pins`` pins that hash.

    ``pins`` (``data/pins.yaml``) names, for each dataset, its committed ``source``,
    the ``copy`` the stages read and the ``md5`` the results were made with.

    Raises:
        DataError: ``root`` differs from the pin (the message says how to restore
            the pinned data or how to re-pin on purpose), or ``pins`` pins nothing
            at ``root``.
    """
    entries = [(n, e) for n, e in _read_pins(pins).items() if Path(e.get("copy", "")) == root]
    if not entries or not entries[0][1].get("md5"):
        raise DataError(
            f"{pins} pins no dataset copied to {root} (no entry with `copy: {root}` and "
            f"an md5); restore it with `git checkout {pins}`"
        )
    name, entry = entries[0]
    pinned, source = entry["md5"], str(entry.get("source", "the source folder"))
    actual, nfiles = dir_md5(root)
    if actual != pinned:
        pin_arg = "" if name == "miniature" else f" {name}"
        raise DataError(
            f"the dataset in {root} (copied from {source}) differs from the one pinned "
            f"in {pins}: md5 {actual} ({nfiles} files), pinned {pinned}; the results in "
            f"this repository were made with the pinned data. To go back: `git checkout "
            f"-- {source}` then `dvc repro`. To use the new data on purpose: `python -m "
            f"vgg_repro.pipeline pin-data{pin_arg}`, then commit {source} and {pins}."
        )
    return actual, source


def pin_data(name: str = "miniature", pins: Path = PINS) -> str:
    """Accept the current data on purpose: write its hash into ``pins`` (``data/pins.yaml``).

    Hashes the committed source folder of the dataset ``name``, which the
    ``copy_data`` stage copies. Only that entry's ``md5:`` line changes, comments
    and all else kept.

    Raises:
        DataError: ``pins`` has no dataset ``name`` (the message lists those it has).
    """
    entries = _read_pins(pins)
    if name not in entries:
        raise DataError(f"{pins} pins no dataset {name!r}; it pins {', '.join(sorted(entries))}")
    md5, _ = dir_md5(Path(entries[name]["source"]))
    lines = pins.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.match(rf"^\s+{re.escape(name)}:", line))
    for i in range(start + 1, len(lines)):
        if re.match(r"^\s+md5:", lines[i]):
            lines[i] = re.sub(r"(md5:\s*)\S+", lambda m: m.group(1) + md5, lines[i])
            break
    write_text(pins, "".join(lines))  # atomic: a killed run leaves the old pin
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
        "--pin", action="store_true", help="accept the current data: write its hash into PINS"
    )
    parser.add_argument(
        "dataset",
        nargs="?",
        default="miniature",
        help=f"with --pin: the dataset of {PINS} to re-pin (miniature, transfer)",
    )
    args = parser.parse_args(argv)
    if args.pin:
        print(f"{PINS} now pins {args.dataset} at {pin_data(args.dataset)}; commit it and the data")
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
