"""Training as in Sec. 3.1 of the paper, on PyTorch Lightning.

Modules, read in this order:

- :mod:`~vgg_repro.training.module`: :class:`VGGClassifier`, the recipe (loss, SGD,
  metrics) around a :class:`~vgg_repro.models.VGG`;
- :mod:`~vgg_repro.training.callbacks`: the plateau schedule, the NaN guard and
  dropout reseeding, which the module adds to every run;
- :mod:`~vgg_repro.training.datamodule`: :class:`ImageFolderDataModule`, the data with
  the paper's augmentation and the global batch split over devices;
- :mod:`~vgg_repro.training.cli`: ``vgg-repro fit|validate|test`` on LightningCLI, with
  the shipped configs of ``vgg_repro/configs``.
"""

from vgg_repro.training.callbacks import DropoutReseed, NonFiniteLossGuard, PlateauSchedule
from vgg_repro.training.cli import VGGCLI, expand_configs, main, resolve_config, shipped_configs
from vgg_repro.training.datamodule import ImageFolderDataModule, per_device_batch
from vgg_repro.training.module import VGGClassifier

__all__ = [
    "VGGCLI",
    "DropoutReseed",
    "ImageFolderDataModule",
    "NonFiniteLossGuard",
    "PlateauSchedule",
    "VGGClassifier",
    "expand_configs",
    "main",
    "per_device_batch",
    "resolve_config",
    "shipped_configs",
]
