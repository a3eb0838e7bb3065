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

__all__ = ["EvalNet", "load", "load_network", "load_torchvision", "read_class_names"]


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
        nominal_scale: the S that the test-scale presets assume when ``train_scale``
            is unknown (256 for torchvision's weights, whose reference evaluation
            rescales to 256 before its 224 crop); None: the presets are refused.
    """

    model: models.VGG
    source: str
    classes: list[str] | None = None
    mean_rgb: tuple[float, ...] = T.IMAGENET_MEAN_RGB
    std_rgb: tuple[float, ...] = (1.0, 1.0, 1.0)
    train_scale: tuple[int, int] | None = None
    width: float = 1.0
    meta: dict = field(default_factory=dict)
    nominal_scale: int | None = None

    def test_scales(self, kind: str = "single") -> list[int]:
        """The test scales Q of a preset (Sec. 3.2): ``"single"`` or ``"multi"``."""
        from vgg_repro.evaluation.scales import resolve_scales

        return resolve_scales(kind, self)

    def transforms(self, image, q: int | None = None):
        """An image as the net takes it: rescaled to shorter side Q (by default the
        single test scale) and normalised, a float ``(3, H, W)`` tensor, like
        torchvision's ``weights.transforms()``."""
        from vgg_repro.evaluation.protocols import preprocess

        q = self.test_scales("single")[0] if q is None else q
        return preprocess(image, q, self.mean_rgb, self.std_rgb)


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


def load(
    path: str | Path, *, torchvision: str | None = None, classes: str | Path | None = None
) -> EvalNet:
    """A trained net and what it needs to classify an image, in one line::

        net = vgg_repro.load("models/D/jitter/model.pt")
        x = net.transforms(image)                       # rescaled to Q, mean subtracted
        posteriors = dense_evaluate(ScoreMapNet(net.model, net.mean_rgb), x[None] ...)

    ``path`` is a pipeline ``model.pt``, a Lightning checkpoint of ``vgg-repro fit`` or
    torchvision's state dict (``vgg16-397923af.pth``, recognised by its layout; its
    configuration from its number of convolutions unless ``torchvision`` names it).
    The result carries the class names, the mean RGB, the training scale and so the
    test scales (:meth:`EvalNet.test_scales`), and :meth:`EvalNet.transforms`.

    Raises:
        CheckpointError: unreadable file, or a layout that is neither kind.
    """
    if torchvision is None:
        ckpt = checkpoints.load_checkpoint(path)
        if checkpoints.META_KEY in ckpt:
            return load_network(path)
        convs = sum(1 for k in ckpt if k.startswith("features.") and k.endswith(".weight"))
        torchvision = _TORCHVISION_BY_CONVS.get(convs)
        if torchvision is None:
            raise CheckpointError(
                f"{path} is neither a vgg-repro checkpoint (no vgg_repro description) nor "
                f"torchvision VGG weights ({convs} convolutions; vgg11/13/16/19 have 8, 10, "
                "13, 16)"
            )
    return load_torchvision(torchvision, path, classes)


# torchvision's VGG state dicts by their number of convolutions (Table 1: A, B, D, E).
_TORCHVISION_BY_CONVS = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}


def load_torchvision(name: str, weights: str | Path, classes: str | Path | None = None) -> EvalNet:
    """torchvision's ImageNet weights read from a local file (never downloaded).

    torchvision's nets expect ``(x / 255 - mean) / std`` with its published
    mean and std; that is expressed here in pixel units.

    Args:
        name: ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19`` (or ``A``, ``B``, ``D``, ``E``).
        weights: the state dict file (``vgg16-397923af.pth``).
        classes: the weights' class names in output order, so that a data folder
            with a subset of ImageNet's classes maps to their outputs: a text file
            with one name (WNID) per line, or ImageNet's ``train`` folder, whose
            sorted folder names are that order. Without it, the data must have
            exactly as many class folders as the weights have outputs.
    """
    import torchvision

    model = models.from_torchvision(checkpoints.load_checkpoint(weights), name)
    tf = torchvision.models.VGG16_Weights.IMAGENET1K_V1.transforms()
    mean = tuple(255.0 * m for m in tf.mean)
    std = tuple(255.0 * s for s in tf.std)
    names = None if classes is None else read_class_names(classes, model.num_classes)
    source = f"torchvision:{name}:{weights}"
    return EvalNet(model.eval(), source, names, mean, std, None, 1.0, nominal_scale=256)


def read_class_names(path: str | Path, expected: int) -> list[str]:
    """Class names in output order: a text file (first word of each line) or a folder
    of class folders (sorted, as training orders them).

    Raises:
        ConfigError: no such file or folder, or not ``expected`` names.
    """
    path = Path(path)
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    elif path.is_file():
        names = [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]
    else:
        raise ConfigError(f"--classes {path}: no such file or folder")
    if len(names) != expected:
        raise ConfigError(
            f"--classes {path} gives {len(names)} class names, the weights have {expected} "
            "outputs: give one name per output, in the weights' order (for ImageNet: "
            "the 1000 WNIDs, or ImageNet's train folder)"
        )
    return names
