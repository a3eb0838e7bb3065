"""Stage ``copy_data``: the pipeline's copy of a committed dataset, never over a user's edit.

    python -m vgg_repro.pipeline.copy_data data/miniature data/pinned
    python -m vgg_repro.pipeline.copy_data data/transfer data/transfer-pinned --dataset transfer

The datasets are committed to git (``data/miniature``, ``data/transfer``); the
stages read a copy (``data/pinned``, ``data/transfer-pinned``) that DVC caches and
hashes, and ``check_data`` compares it with the hash pinned in ``data/pins.yaml``.
This stage makes the copy and brings it up to date with its source, file by file:
new and changed files are copied (each atomically), deleted ones removed.

The copy is the pipeline's, not the user's, so an edit made there would be lost at
the next update. A record of what the stage wrote (``<copy>.files.json``: each
file's md5) tells an edit from a change of the source: a file of the copy that
differs from the record, or is not in it, or is missing, was changed by someone
else, and the stage refuses before it writes anything, naming the file and saying
how to change the data on purpose. The record is written first with both the old
and the new state, so that an update killed halfway resumes at the next run. The
outputs are ``persist: true`` in ``dvc.yaml``, so that DVC leaves an edited copy to
this check instead of removing it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from vgg_repro.errors import DataError
from vgg_repro.files import atomic_write, write_json
from vgg_repro.pipeline.common import run_stage

__all__ = ["copy_data", "edits", "main", "record_path"]


def record_path(copy: str | os.PathLike) -> Path:
    """Where the record of a copy's files lies: beside it, ``<copy>.files.json``.

    >>> record_path("data/pinned").as_posix()
    'data/pinned.files.json'
    """
    copy = Path(copy)
    return copy.with_name(copy.name + ".files.json")


def _files(root: Path) -> dict[str, str]:
    """Each file under ``root``: relative POSIX path -> md5."""
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def edits(have: dict[str, str], record: dict) -> list[tuple[str, str]]:
    """What someone else did to a copy since this stage wrote it: (path, "edited" |
    "added" | "deleted"), in path order.

    ``record`` is the stage's record: ``files`` (path -> md5) as it left the copy and,
    while an update is under way, ``previous``, the files before it: a file in either
    state is the stage's own, so that an update killed halfway is resumed, not
    mistaken for an edit.

    >>> edits({"a": "1", "b": "9", "c": "3"}, {"files": {"a": "1", "b": "2", "d": "4"}})
    [('b', 'edited'), ('c', 'added'), ('d', 'deleted')]
    >>> halfway = {"files": {"a": "5", "c": "3"}, "previous": {"a": "1", "b": "2"}}
    >>> edits({"a": "1", "b": "2"}, halfway), edits({"a": "5", "b": "2", "c": "3"}, halfway)
    ([], [])
    """
    states = [record.get("files") or {}]
    if record.get("previous") is not None:
        states.append(record["previous"])
    found = []
    for path in sorted(set(have).union(*states)):
        if have.get(path) in {state.get(path) for state in states}:
            continue
        if path not in have:
            found.append((path, "deleted"))
        elif all(path not in state for state in states):
            found.append((path, "added"))
        else:
            found.append((path, "edited"))
    return found


def _refuse(
    copy: Path, source: Path, changed: list[tuple[str, str]], why: str, dataset: str
) -> DataError:
    path, what = changed[0]
    others = f" (and {len(changed) - 1} other file(s))" if len(changed) > 1 else ""
    pin = "pin-data" if dataset == "miniature" else f"pin-data {dataset}"
    return DataError(
        f"{copy / path} was {what}{others} {why}: {copy} is the pipeline's copy of "
        f"{source}, and the next update would undo the change, so nothing was written. "
        f"To keep the change, make it in {source} instead, run `python -m "
        f"vgg_repro.pipeline {pin}`, delete {copy} and run `dvc repro`; to drop it, "
        f"delete {copy} and run `dvc repro`."
    )


def copy_data(
    source: str | os.PathLike, copy: str | os.PathLike, dataset: str = "miniature"
) -> dict[str, int]:
    """Bring ``copy`` up to date with ``source``, refusing if someone changed the copy.

    ``dataset`` is the copy's name in ``data/pins.yaml``, for the message.

    Returns:
        How many files were ``copied`` (new or changed), ``removed`` and ``kept``.

    Raises:
        DataError: ``source`` is not a folder, or the copy was changed since this
            stage wrote it (or, with no record, differs from its source): the message
            names the file and says how to change the data on purpose.
    """
    source, copy = Path(source), Path(copy)
    if not source.is_dir():
        raise DataError(
            f"{source} is not a folder: it is committed to git; restore it with "
            f"`git checkout -- {source}`"
        )
    record_file = record_path(copy)
    wanted = _files(source)
    have = _files(copy) if copy.is_dir() else {}
    if record_file.is_file():
        changed = edits(have, json.loads(record_file.read_text(encoding="utf-8")))
        if changed:
            raise _refuse(copy, source, changed, "after `dvc repro` copied it", dataset)
    elif have:
        # A copy without a record (made by hand, or by DVC's import in an older
        # version of this repository): taken over only where it equals its source.
        changed = [(p, w) for p, w in edits(have, {"files": wanted}) if w != "deleted"]
        if changed:
            raise _refuse(copy, source, changed, f"and differs from {source}", dataset)
    # First say what the copy may hold while it is being updated, then update it.
    write_json(record_file, {"files": wanted, "previous": have})
    counts = {"copied": 0, "removed": 0, "kept": 0}
    for rel, digest in wanted.items():
        if have.get(rel) == digest:
            counts["kept"] += 1
            continue
        with atomic_write(copy / rel, binary=True) as f:
            f.write((source / rel).read_bytes())
        counts["copied"] += 1
    for rel in sorted(have.keys() - wanted.keys()):
        (copy / rel).unlink()
        counts["removed"] += 1
    for folder in sorted((p for p in copy.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    copy.mkdir(parents=True, exist_ok=True)
    write_json(record_file, {"files": wanted})
    return counts


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.copy_data SOURCE COPY``."""
    parser = argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.copy_data")
    parser.add_argument("source", help="the committed dataset (data/miniature)")
    parser.add_argument("copy", help="the pipeline's copy of it (data/pinned)")
    parser.add_argument(
        "--dataset", default="miniature", help="its name in data/pins.yaml (miniature, transfer)"
    )
    args = parser.parse_args(argv)
    counts = copy_data(args.source, args.copy, args.dataset)
    print(
        f"{args.copy}: {counts['copied']} copied, {counts['removed']} removed, "
        f"{counts['kept']} unchanged, from {args.source}"
    )
    return 0


if __name__ == "__main__":
    run_stage("copy_data", main)
