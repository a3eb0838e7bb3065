"""Files written atomically: a killed run, a full disk or a reader never sees half of one.

Every file that vgg_repro writes for a user (checkpoints, exported models, metrics,
descriptors, reports) goes through :func:`atomic_write`: the bytes go to a temporary
file beside the target, which is renamed over it only once complete. On any error the
temporary file is deleted and the old file, if any, is left as it was. A failed write
raises :class:`OSError` naming the target, not the temporary file, so that the
one-line message (:func:`vgg_repro.errors.user_message`) names what the user asked for.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "write_json", "write_text"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, binary: bool = False, sync: bool = False) -> Iterator[IO]:
    """A file object whose content replaces ``path`` when the ``with`` block ends.

    Args:
        path: the target; its folder is created if missing.
        binary: open in ``"wb"`` rather than ``"w"`` (UTF-8).
        sync: ``fsync`` before the rename, so that the file survives a power cut too
            (checkpoints, which are costly to remake).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(target) as f:
    ...     _ = f.write("whole")
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('whole', ['a.txt'])
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
        ) as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2, sort_keys: bool = True) -> None:
    """Write ``obj`` as JSON (one trailing newline) to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")
