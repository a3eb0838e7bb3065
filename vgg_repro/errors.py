"""Errors a user can act on.

Every error that bad input can cause derives from :class:`VGGReproError`; the
``vgg-repro`` command and the pipeline's stages print its message (which names the
file, setting or value and what to do) instead of a traceback, through
:func:`user_message`, which also turns the operating system's refusals to write (a
full disk, a read-only or forbidden folder) into one line.
"""

from __future__ import annotations

import errno


class VGGReproError(Exception):
    """Base class of the errors whose message is meant for the user."""


class ConfigError(VGGReproError, ValueError):
    """An impossible setting: unknown network name, width <= 0, S_min > S_max...

    ``key``: the setting at fault, where it has a name (``profiles.smoke.train.sed``).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(VGGReproError):
    """A dataset problem: unreadable image, empty folder, mismatched classes..."""


class CheckpointError(VGGReproError):
    """A checkpoint that cannot be used: unsafe pickle, wrong architecture..."""


class DivergenceError(VGGReproError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


class CollapseError(DivergenceError):
    """Training fell back to chance after having learnt; the last good checkpoint is kept."""


# What to do about the operating system's refusals that a user can cause and fix.
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space on it, or write to another disk",
    errno.EDQUOT: "the disk quota is used up: free space, or write to another disk",
    errno.EACCES: "permission denied: change the file's or folder's permissions, or use another",
    errno.EPERM: "not permitted: change the file's or folder's permissions, or use another",
    errno.EROFS: "the file system is read-only: write to another folder",
}


def _unwrapped(message: str) -> str:
    """A DataLoader worker's error without PyTorch's wrapper around it.

    PyTorch re-raises an error of a worker process in the main process with the
    worker's whole traceback as its message; the last line is the error itself.

    >>> _unwrapped("Caught DataError in DataLoader worker process 0.\\n"
    ...     "Original Traceback (most recent call last):\\n  File ...\\n"
    ...     "vgg_repro.errors.DataError: cannot read image a.jpg: truncated\\n")
    'cannot read image a.jpg: truncated (in DataLoader worker process 0)'
    >>> _unwrapped("plain")
    'plain'
    """
    if not message.startswith("Caught ") or "Original Traceback" not in message:
        return message
    where = message.split("\n", 1)[0].rstrip(".").split(" in ", 1)[-1]
    last = [line for line in message.splitlines() if line.strip()][-1]
    name, sep, text = last.partition(": ")
    if sep and name.replace(".", "").replace("_", "").isalnum():
        last = text
    return f"{last} (in {where})"


def user_message(err: BaseException) -> str | None:
    """The one-line message for an error the user can act on, or None for a bug.

    Handles :class:`VGGReproError` (also when raised in a DataLoader worker) and an
    :class:`OSError` that the user can fix: a full disk, a read-only or forbidden
    file or folder.

    >>> print(user_message(OSError(errno.ENOSPC, "No space left on device", "m.json")))
    m.json: No space left on device (the disk is full: free space on it, or write to another disk)
    >>> user_message(KeyError("x")) is None
    True
    """
    if isinstance(err, VGGReproError):
        return " ".join(_unwrapped(str(err)).split())
    if isinstance(err, OSError) and err.errno in _OS_ADVICE:
        where = err.filename or "a file"
        return f"{where}: {err.strerror} ({_OS_ADVICE[err.errno]})"
    return None
