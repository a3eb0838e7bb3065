"""Errors a user can act on.

Every error that bad input can cause derives from :class:`VGGReproError`; the
``vgg-repro`` command prints its message (which names the file, setting or
value and what to do) instead of a traceback.
"""


class VGGReproError(Exception):
    """Base class of the errors whose message is meant for the user."""


class ConfigError(VGGReproError, ValueError):
    """An impossible setting: unknown network name, width <= 0, S_min > S_max..."""


class DataError(VGGReproError):
    """A dataset problem: unreadable image, empty folder, mismatched classes..."""


class CheckpointError(VGGReproError):
    """A checkpoint that cannot be used: unsafe pickle, wrong architecture..."""


class DivergenceError(VGGReproError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""
