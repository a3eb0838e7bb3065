"""The networks that evaluation runs, read from files: a vgg-repro checkpoint (a
pipeline ``model.pt`` or a Lightning checkpoint) or torchvision's ImageNet weights.

:class:`EvalNet` carries what testing needs besides the weights: the class order,
the input normalisation and the training scale S, from which the test scales of
Sec. 3.2 follow (:func:`vgg_repro.evaluation.scales.resolve_scales`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vgg_repro import checkpoints, models
from vgg_repro.data import transforms as T
from vgg_repro.data.stats import load_stats
from vgg_repro.errors import CheckpointError, ConfigError

__all__ = ["EvalNet", "load_network", "load_torchvision"]


@dataclass
class EvalNet:
    """A network to evaluate, with what evaluation needs to know about it.

    Attributes:
        model: the network (classifier form).
        source: checkpoint path or weights file, for reports.
        classes: class names in output order, or None (then sorted folder order).
        mean_rgb, std_rgb: input normalisation in pixel units.
        train_scale: ``(S_min, S_max)`` of training, or None if unknown.
        width: channel multiplier (1.0: the paper's net).
        meta: the checkpoint's ``vgg_repro`` description (with the pipeline's training
            seed and environment); empty for torchvision's weights.
    """

    model: models.VGG
    source: str
    classes: list[str] | None = None
    mean_rgb: tuple[float, ...] = T.IMAGENET_MEAN_RGB
    std_rgb: tuple[float, ...] = (1.0, 1.0, 1.0)
    train_scale: tuple[int, int] | None = None
    width: float = 1.0
    meta: dict = field(default_factory=dict)


def load_network(path: str | Path, arch: str | None = None) -> EvalNet:
    """A vgg-repro checkpoint as an :class:`EvalNet`.

    The training scale and mean RGB come from the checkpoint's ``vgg_repro``
    entry (keys ``scale_min``, ``scale_max``, ``mean_rgb``) or, in a Lightning
    checkpoint, from the DataModule's saved arguments (``scale_min``,
    ``scale_max``, ``stats``); the mean RGB defaults to ImageNet's.

    Raises:
        CheckpointError: unreadable checkpoint, ``arch`` given and different, or
            a stats file recorded at training that cannot be read now.
    """
    ckpt = checkpoints.load_checkpoint(path)  # read once: weights and data arguments
    model, meta = checkpoints.model_from_loaded(ckpt, path, arch=arch)
    data_args = ckpt.get("datamodule_hyper_parameters") or {}

    def pick(key):  # the vgg_repro entry first, then the DataModule's arguments
        return meta[key] if meta.get(key) is not None else data_args.get(key)

    lo, hi, mean = pick("scale_min"), pick("scale_max"), meta.get("mean_rgb")
    train = (int(lo), int(hi if hi is not None else lo)) if lo is not None else None
    if mean is None:
        try:
            mean = load_stats(data_args.get("stats"))["mean_rgb"]
        except ConfigError as err:
            raise CheckpointError(
                f"{path} was trained with the mean RGB of {data_args.get('stats')}, which "
                f"cannot be read here ({err}); restore that file or evaluate where it exists"
            ) from None
    std = tuple(meta.get("std_rgb") or (1.0, 1.0, 1.0))
    classes = meta["classes"]
    return EvalNet(model, str(path), classes, tuple(mean), std, train, float(meta["width"]), meta)


def load_torchvision(name: str, weights: str | Path) -> EvalNet:
    """torchvision's ImageNet weights read from a local file (never downloaded).

    torchvision's nets expect ``(x / 255 - mean) / std`` with its published
    mean and std; that is expressed here in pixel units.
    """
    import torchvision

    model = models.from_torchvision(checkpoints.load_checkpoint(weights), name)
    tf = torchvision.models.VGG16_Weights.IMAGENET1K_V1.transforms()
    mean = tuple(255.0 * m for m in tf.mean)
    std = tuple(255.0 * s for s in tf.std)
    return EvalNet(model.eval(), f"torchvision:{name}:{weights}", None, mean, std, None, 1.0)
