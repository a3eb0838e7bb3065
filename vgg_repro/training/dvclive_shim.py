"""A workaround for dvclive's Lightning logger, kept in one place until dvclive fixes it.

dvclive 3.49's ``DVCLiveLogger.log_metrics`` decides whether to write its files by
looking for Lightning's logging functions on the call stack with
:func:`inspect.stack`, which reads the source file of every frame: about 0.2 s a
call here, 13% of a miniature training run on 2 CPU cores (978 against 1125
images/s for net A, measured with and without this shim). :class:`FastSyncDVCLiveLogger`
answers the same question from the frames' function names alone and then calls the
public ``log_metrics(metrics, step, sync)`` of dvclive's base logger.

``tests/test_training.py::test_dvclive_still_reads_every_frames_source`` fails once
dvclive stops calling :func:`inspect.stack` there: then delete this module and use
``dvclive.lightning.DVCLiveLogger`` itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from dvclive.fabric import DVCLiveLogger as FabricDVCLiveLogger
from dvclive.lightning import DVCLiveLogger
from pytorch_lightning.utilities import rank_zero_only

__all__ = ["SYNC_HOOKS", "FastSyncDVCLiveLogger"]

# The Lightning functions from which dvclive writes its files (dvclive.lightning).
SYNC_HOOKS = ("update_train_step_metrics", "update_train_epoch_metrics", "log_eval_end_metrics")


class FastSyncDVCLiveLogger(DVCLiveLogger):
    """dvclive's Lightning logger, syncing from the same hooks without reading source."""

    @rank_zero_only
    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, sync: bool | None = False
    ) -> None:
        frame = inspect.currentframe()
        while frame is not None and not sync:
            sync = frame.f_code.co_name in SYNC_HOOKS
            frame = frame.f_back
        FabricDVCLiveLogger.log_metrics(self, metrics, step, sync)
