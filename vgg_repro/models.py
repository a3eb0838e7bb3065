"""The paper's six ConvNet configurations (Table 1), as plain PyTorch modules.

Everything here is ordinary ``torch.nn``: no Lightning, no data, importable on
its own. One table (:data:`CFGS`) holds the configurations in the paper's own
notation; one builder (:func:`build`) turns a row into a network::

    from vgg_repro import models
    net = models.build("D")                 # VGG-16, exactly the paper's
    dense = models.to_dense(net)            # FC layers as convolutions (Sec. 3.2)
    scores = dense(images)                  # class score map, (N, 1000, h, w)

Weights move to and from torchvision with :func:`from_torchvision` and
:func:`to_torchvision`; deeper nets start from a trained net A with
:func:`init_from_a` (Sec. 3.1).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vgg_repro.errors import ConfigError

__all__ = [
    "CFGS",
    "ALIASES",
    "DenseVGG",
    "VGG",
    "ConfigError",
    "build",
    "build_meta",
    "canonical_name",
    "count_macs",
    "count_parameters",
    "from_torchvision",
    "init_from_a",
    "init_weights",
    "load_state_dict_checked",
    "to_dense",
    "to_torchvision",
]


# Table 1 of the paper, column by column, in the paper's own notation:
# "conv3-64" is a 3x3 convolution with 64 output channels, "conv1-256" a 1x1
# one (configuration C only), "maxpool" a 2x2 stride-2 max-pool and "LRN" local
# response normalisation (A-LRN only). Every convolution is followed by a ReLU.
# The head (FC-4096, FC-4096, FC-1000, soft-max) is the same for all six.
_A = ["conv3-64", "maxpool", "conv3-128", "maxpool", "conv3-256", "conv3-256", "maxpool"]
_A += ["conv3-512", "conv3-512", "maxpool", "conv3-512", "conv3-512", "maxpool"]
CFGS: dict[str, list[str]] = {
    "A": _A,
    "A-LRN": ["conv3-64", "LRN"] + _A[1:],
    "B": ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool"]
    + ["conv3-256", "conv3-256", "maxpool"]
    + ["conv3-512", "conv3-512", "maxpool", "conv3-512", "conv3-512", "maxpool"],
    "C": ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool"]
    + ["conv3-256", "conv3-256", "conv1-256", "maxpool"]
    + ["conv3-512", "conv3-512", "conv1-512", "maxpool"]
    + ["conv3-512", "conv3-512", "conv1-512", "maxpool"],
    "D": ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool"]
    + ["conv3-256"] * 3
    + ["maxpool"]
    + ["conv3-512"] * 3
    + ["maxpool"]
    + ["conv3-512"] * 3
    + ["maxpool"],
    "E": ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool"]
    + ["conv3-256"] * 4
    + ["maxpool"]
    + ["conv3-512"] * 4
    + ["maxpool"]
    + ["conv3-512"] * 4
    + ["maxpool"],
}
del _A

# The names other libraries use. torchvision's vgg11/13/16/19 are A, B, D, E
# exactly; "vgg16-c" is the paper's 16-layer net with 1x1 convolutions.
ALIASES: dict[str, str] = {
    "vgg11": "A",
    "vgg11-lrn": "A-LRN",
    "vgg13": "B",
    "vgg16-c": "C",
    "vgg16": "D",
    "vgg19": "E",
}

FC_WIDTH = 4096  # Sec. 2.1: the first two FC layers have 4096 channels each.
# Sec. 2.1 and Table 1: LRN with "the parameters of Krizhevsky et al. (2012)".
LRN_PARAMS = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
# Sec. 3.1: "sampled from a normal distribution with the zero mean and 10^-2
# variance". We follow Caffe practice, std 0.01 (variance 10^-4): see init_weights.
PAPER_INIT_STD = 0.01


def canonical_name(name: str) -> str:
    """The paper's letter for a configuration name or alias.

    >>> canonical_name("vgg16")
    'D'
    >>> canonical_name("a-lrn")
    'A-LRN'
    """
    key = str(name).strip()
    if key.upper() in CFGS:
        return key.upper()
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    valid = ", ".join(list(CFGS) + list(ALIASES))
    raise ConfigError(f"unknown VGG configuration {name!r}; valid names are: {valid}")


def _scaled(channels: int, width: float) -> int:
    """Channel count after width scaling, never below 1.

    >>> _scaled(64, 0.25), _scaled(4096, 1.0), _scaled(64, 0.001)
    (16, 4096, 1)
    """
    return max(1, int(round(channels * width)))


def num_weight_layers(name: str) -> int:
    """Weight layers of a configuration as counted in Table 1 (convs + 3 FC).

    >>> [num_weight_layers(n) for n in ("A", "B", "C", "D", "E")]
    [11, 13, 16, 16, 19]
    """
    return sum(s.startswith("conv") for s in CFGS[canonical_name(name)]) + 3


class VGG(nn.Module):
    """A VGG network in classifier form: conv stack, then three FC layers.

    Module names and layout follow torchvision's ``VGG`` (``features``,
    ``avgpool``, ``classifier`` with FC layers at indices 0, 3, 6), so that
    state dicts of A, B, D and E are interchangeable with torchvision's.

    Args:
        name: configuration (see :data:`CFGS`).
        features: the convolutional stack.
        feature_channels: channels out of the last convolution.
        num_classes: size of the last FC layer.
        fc_width: channels of FC6 and FC7 (4096 in the paper).
        dropout: dropout ratio after FC6 and FC7 (0.5 in the paper).
        crop_size: training crop side (224 in the paper). FC6 sees the
            ``crop_size / 32`` square map left after five max-pools.
    """

    def __init__(
        self,
        name: str,
        features: nn.Sequential,
        feature_channels: int,
        num_classes: int,
        fc_width: int,
        dropout: float,
        crop_size: int,
    ) -> None:
        super().__init__()
        self.name = name
        self.crop_size = crop_size
        self.num_classes = num_classes
        self.pool_size = crop_size // 32
        self.features = features
        # Identity at the training crop size; at other sizes it behaves like
        # torchvision's (adaptive pooling). Dense evaluation uses to_dense().
        self.avgpool = nn.AdaptiveAvgPool2d((self.pool_size, self.pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(feature_channels * self.pool_size**2, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional feature map after the fifth max-pool."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) from a feature map."""
        return self.classifier(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(N, num_classes)``; the soft-max lives in the loss."""
        return self.forward_head(self.forward_features(x))


class DenseVGG(nn.Module):
    """The fully-convolutional form of a VGG net for dense evaluation (Sec. 3.2).

    FC6 is a ``k x k`` convolution (``k = crop_size / 32``, 7 at 224), FC7 and
    FC8 are 1x1 convolutions. On an image whose shorter side is Q it returns the
    class score map, ``floor(Q/32) - k + 1`` positions per side (``floor(Q/32) - 6``
    in the paper), before any soft-max.
    """

    def __init__(self, features: nn.Sequential, head: nn.Sequential, crop_size: int) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.crop_size = crop_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class score map, shape ``(N, num_classes, h, w)``."""
        h, w = x.shape[-2:]
        if min(h, w) < self.crop_size:
            raise ValueError(
                f"dense evaluation needs images of at least {self.crop_size}x{self.crop_size} "
                f"pixels (the training crop size); got {h}x{w}. Rescale the image so its "
                f"shorter side Q is >= {self.crop_size}."
            )
        return self.head(self.features(x))


def make_layers(cfg: list[str], width: float = 1.0) -> tuple[nn.Sequential, int]:
    """The convolutional stack of one Table 1 column, and its output channels."""
    layers: list[nn.Module] = []
    in_channels = 3
    for spec in cfg:
        if spec == "maxpool":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif spec == "LRN":
            # PyTorch's LocalResponseNorm divides alpha by size, as Caffe (which
            # the paper used) and AlexNet's own formulation in Caffe do.
            layers.append(nn.LocalResponseNorm(**LRN_PARAMS))
        else:
            kernel, channels = spec.removeprefix("conv").split("-")
            out_channels = _scaled(int(channels), width)
            k = int(kernel)
            # Sec. 2.1: stride 1, padding 1 for 3x3 so that resolution is kept.
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=k, padding=k // 2))
            layers.append(nn.ReLU(inplace=True))
            in_channels = out_channels
    return nn.Sequential(*layers), in_channels


def build(
    name: str,
    num_classes: int = 1000,
    width: float = 1.0,
    dropout: float = 0.5,
    *,
    crop_size: int = 224,
    init: str = "paper",
    weights: str | os.PathLike | Mapping[str, Any] | None = None,
) -> VGG:
    """Build a VGG network of the paper (Table 1), with trained weights if given.

    Args:
        name: ``A``, ``A-LRN``, ``B``, ``C``, ``D``, ``E`` or an alias
            (``vgg11``, ``vgg11-lrn``, ``vgg13``, ``vgg16-c``, ``vgg16``, ``vgg19``).
        num_classes: output classes (1000 for ImageNet).
        width: multiplies every channel count, FC6 and FC7 included; 1.0 is the
            paper's network, smaller values give the miniature profile's nets.
        dropout: dropout ratio on FC6 and FC7 (Sec. 3.1: 0.5).
        crop_size: the training crop side, a multiple of 32 (224 in the paper).
        init: ``"paper"``, ``"xavier"`` or ``"none"``; see :func:`init_weights`.
        weights: trained weights, as timm's ``checkpoint_path``: a pipeline
            ``model.pt``, a Lightning checkpoint of ``vgg-repro fit``, a torchvision
            state dict file (``vgg16-397923af.pth``; nothing is downloaded), or a state
            dict. A vgg-repro file also sets ``num_classes``, ``width``, ``crop_size``
            and ``dropout`` from its description; a torchvision one sets
            ``num_classes`` from its last layer. The result is in eval mode.

    Returns:
        The network in classifier form; ``to_dense`` gives its dense form.

    Raises:
        ConfigError: on an unknown name, ``width <= 0``, a bad crop size,
            ``num_classes < 1``, a dropout ratio outside [0, 1), or weights that are
            unreadable or of another configuration.
    """
    if weights is not None:
        return _build_with_weights(name, weights, num_classes, width, dropout, crop_size)
    key = canonical_name(name)
    if not (isinstance(width, int | float) and math.isfinite(width) and width > 0):
        raise ConfigError(f"width must be a positive number (1.0 = the paper's net); got {width!r}")
    if not isinstance(crop_size, int) or crop_size < 32 or crop_size % 32:
        raise ConfigError(
            f"crop_size must be a positive multiple of 32 (five 2x2 max-pools); got {crop_size!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer; got {num_classes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1); got {dropout!r}")
    features, channels = make_layers(CFGS[key], width)
    model = VGG(key, features, channels, num_classes, _scaled(FC_WIDTH, width), dropout, crop_size)
    init_weights(model, init)
    return model


def _read_weights(weights: str | os.PathLike | Mapping[str, Any]) -> tuple[dict, dict | None]:
    """A state dict and the vgg-repro description, if any, from a file or a mapping.

    Files are read by ``torch.load(weights_only=True)``, which refuses anything but
    tensors and plain containers (:mod:`vgg_repro.checkpoints` says more on why a
    file cannot be read).
    """
    if isinstance(weights, Mapping):
        loaded: Any = dict(weights)
    else:
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(f"weights file {path} does not exist")
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ConfigError(
                f"cannot read weights {path} ({type(err).__name__}); "
                "vgg_repro.checkpoints.load_checkpoint says why"
            ) from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{weights} holds a {type(loaded).__name__}, not weights")
    meta = loaded.get("vgg_repro") if isinstance(loaded.get("vgg_repro"), dict) else None
    state = loaded.get("state_dict", loaded)
    if any(k.startswith("net.") for k in state):  # a Lightning checkpoint
        state = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    return state, meta


def _build_with_weights(name, weights, num_classes, width, dropout, crop_size) -> VGG:
    key = canonical_name(name)
    state, meta = _read_weights(weights)
    if meta is not None:  # a vgg-repro file knows its own geometry
        if meta.get("arch") != key:
            raise ConfigError(
                f"{weights} holds configuration {meta.get('arch')}, not {key}: "
                f"build({meta.get('arch')!r}, weights=...) or give other weights"
            )
        num_classes, width = int(meta["num_classes"]), float(meta["width"])
        crop_size, dropout = int(meta["crop_size"]), float(meta["dropout"])
    elif "classifier.6.weight" in state:  # torchvision's layout: the class count
        num_classes = int(state["classifier.6.weight"].shape[0])
    with torch.device("meta"):  # no memory for weights that are replaced at once
        model = build(key, num_classes, width, dropout, crop_size=crop_size, init="none")
    what = "the given state dict" if isinstance(weights, Mapping) else str(weights)
    load_state_dict_checked(model, state, what, assign=True)
    return model.eval()


def init_weights(model: nn.Module, scheme: str = "paper", std: float = PAPER_INIT_STD) -> None:
    """Initialise every convolution and linear layer of ``model`` in place.

    Args:
        model: the network.
        scheme: ``"paper"``: weights from N(0, std^2), biases 0 (Sec. 3.1).
            ``"xavier"``: Glorot & Bengio's uniform init, biases 0; the paper
            notes, after submission, that it trains deep nets without
            pre-training. ``"none"``: keep PyTorch's default initialisation.
        std: the standard deviation of the paper's scheme.

    The paper writes "variance 10^-2". Read literally that is std 0.1, with which
    the activations' variance grows about 2.9x per 3x3 layer of 64 inputs
    (576 x 0.01, halved by the ReLU) and overflows in a 19-layer net. We follow
    Caffe's usual practice, std 0.01; its activations shrink instead, which is
    consistent with the paper having to start B to E from a trained A
    (:func:`init_from_a`).
    """
    if scheme not in ("paper", "xavier", "none"):
        raise ConfigError(f"unknown init scheme {scheme!r}; choose 'paper', 'xavier' or 'none'")
    if scheme == "none":
        return
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            if scheme == "paper":
                nn.init.normal_(module.weight, mean=0.0, std=std)
            else:
                nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


def _fc_layers(model: VGG) -> list[nn.Linear]:
    return [m for m in model.classifier if isinstance(m, nn.Linear)]


def to_dense(model: VGG) -> DenseVGG:
    """The fully-convolutional form of ``model``, for dense evaluation (Sec. 3.2).

    The convolutional stack is shared with ``model`` (same modules, no copy);
    FC6 is copied into a ``k x k`` convolution and FC7, FC8 into 1x1
    convolutions, exactly (a reshape, no arithmetic). At the crop size the 1x1
    score map equals ``model``'s logits. The result is in ``model``'s
    train/eval mode, on its device and dtype.
    """
    if not isinstance(model, VGG):
        raise TypeError(f"to_dense expects a vgg_repro VGG model; got {type(model).__name__}")
    k = model.pool_size
    convs = []
    for i, fc in enumerate(_fc_layers(model)):
        kernel = k if i == 0 else 1
        conv = nn.Conv2d(fc.in_features // kernel**2, fc.out_features, kernel_size=kernel)
        conv = conv.to(device=fc.weight.device, dtype=fc.weight.dtype)
        with torch.no_grad():
            # nn.Linear flattens (C, H, W) in that order, so a view recovers the kernel.
            conv.weight.copy_(fc.weight.view(conv.weight.shape))
            conv.bias.copy_(fc.bias)
        convs.append(conv)
    dropout = model.classifier[2].p
    head = nn.Sequential(
        convs[0], nn.ReLU(inplace=True), nn.Dropout(dropout),
        convs[1], nn.ReLU(inplace=True), nn.Dropout(dropout),
        convs[2],
    )  # fmt: skip
    dense = DenseVGG(model.features, head, model.crop_size)
    dense.train(model.training)
    return dense


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, image_size: int = 224) -> int:
    """Multiply-accumulates of one forward pass on a square RGB image.

    Counted by running the model under :class:`torch.utils.flop_counter.FlopCounterMode`
    (which counts 2 FLOPs per MAC) on the meta device when the model is on it,
    so that no memory or time is spent on the real arithmetic.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if image_size < 32:
        raise ConfigError(f"image_size must be at least 32 (five 2x2 max-pools); got {image_size}")
    param = next(model.parameters())
    x = torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def load_state_dict_checked(
    model: nn.Module, state_dict: Mapping[str, Any], what: str, *, assign: bool = False
) -> None:
    """``load_state_dict(strict=True)`` with an error that names what differs.

    Args:
        model: the target network.
        state_dict: weights to load.
        what: a description of the source, used in the error message.
        assign: make the given tensors the model's parameters (cast to the model's
            dtypes) instead of copying them in: the way to fill a network built on
            the meta device (:func:`build_meta`) without allocating it twice.

    Raises:
        ConfigError: on missing or unexpected keys, or a shape mismatch.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k}: {tuple(state_dict[k].shape)} in {what}, {tuple(v.shape)} in the model"
        for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        target = getattr(model, "name", type(model).__name__)
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (first: {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (first: {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {shapes[:2]})")
        raise ConfigError(
            f"{what} does not fit configuration {target} "
            f"(classes={getattr(model, 'num_classes', '?')}): "
            + "; ".join(parts)
            + ". Check the configuration name, width and number of classes."
        )
    if assign:
        state_dict = {k: v.to(dtype=own[k].dtype) for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=assign)


_TORCHVISION = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}


def _torchvision_name(name: str) -> str:
    key = canonical_name(name)
    if key not in _TORCHVISION:
        raise ConfigError(
            f"torchvision has no counterpart of configuration {key}; "
            f"it ships A, B, D, E as {', '.join(_TORCHVISION.values())}"
        )
    return key


def from_torchvision(state_dict_or_model: Mapping[str, Any] | nn.Module, name: str) -> VGG:
    """A paper-layout VGG carrying torchvision's weights for A, B, D or E.

    Args:
        state_dict_or_model: a torchvision ``vgg11/13/16/19`` model, or its state
            dict (e.g. ``torch.load("vgg16-397923af.pth", weights_only=True)``;
            nothing is downloaded).
        name: the configuration the weights belong to (``D`` or ``vgg16``...).

    Returns:
        A :class:`VGG` (1000 classes, width 1, crop 224) whose logits equal
        torchvision's model on the same input.
    """
    key = _torchvision_name(name)
    if isinstance(state_dict_or_model, nn.Module):
        state_dict = state_dict_or_model.state_dict()
    else:
        state_dict = state_dict_or_model
    fc8 = state_dict.get("classifier.6.weight")
    num_classes = int(fc8.shape[0]) if fc8 is not None else 1000
    with torch.device("meta"):
        model = build(key, num_classes=num_classes, init="none")
    model = model.to_empty(device="cpu")
    load_state_dict_checked(model, state_dict, f"torchvision weights given as {_TORCHVISION[key]}")
    return model


def to_torchvision(model: VGG) -> nn.Module:
    """The same weights in a torchvision ``vgg11/13/16/19`` model."""
    import torchvision

    key = _torchvision_name(model.name)
    if model.crop_size != 224 or model.classifier[0].out_features != FC_WIDTH:
        raise ConfigError(
            "only width-1.0 networks with 224 crops have a torchvision counterpart; "
            f"this one has crop {model.crop_size} and FC width {model.classifier[0].out_features}"
        )
    tv = getattr(torchvision.models, _TORCHVISION[key])(weights=None, num_classes=model.num_classes)
    tv.load_state_dict(model.state_dict())
    return tv


def _conv_positions(model: VGG) -> dict[tuple[int, int], str]:
    """Map (stage, index within stage) of each convolution to its module name."""
    positions, stage, index = {}, 0, 0
    for i, module in enumerate(model.features):
        if isinstance(module, nn.MaxPool2d):
            stage, index = stage + 1, 0
        elif isinstance(module, nn.Conv2d):
            positions[(stage, index)] = f"features.{i}"
            index += 1
    return positions


def init_from_a(model: VGG, net_a: VGG | Mapping[str, Any]) -> list[tuple[str, str]]:
    """Start a deeper net from a trained net A (Sec. 3.1), in place.

    The paper initialises "the first four convolutional layers and the last three
    fully-connected layers with the layers of net A", the others randomly. A's
    first four convolutions are the first of stages 1, 2, 3 and the second of
    stage 3; each is copied to the convolution at the same place (stage, index)
    of the deeper net, which is the only placement where every shape agrees.

    Args:
        model: the deeper net (B, C, D or E; any width), already initialised.
        net_a: a trained net A of the same width and classes, or its state dict.

    Returns:
        The (source, target) module names copied, in order.

    Raises:
        ConfigError: if a copied layer's shape differs; the message names both layers.
    """
    if isinstance(net_a, VGG):
        state = net_a.state_dict()
        source_name = net_a.name
    else:
        state, source_name = net_a, "A"
    if source_name not in ("A", "A-LRN"):
        raise ConfigError(f"init_from_a needs a net A; got configuration {source_name}")
    src_positions = list(_conv_positions(build_meta(source_name)).items())[:4]
    dst_positions = _conv_positions(model)
    pairs = [(src, dst_positions[pos]) for pos, src in src_positions]
    pairs += [(f"classifier.{i}", f"classifier.{i}") for i in (0, 3, 6)]
    own = model.state_dict()
    updates = {}
    for src, dst in pairs:
        for suffix in ("weight", "bias"):
            s, d = f"{src}.{suffix}", f"{dst}.{suffix}"
            if s not in state:
                raise ConfigError(f"net A's state dict has no {s!r}; is it a net A checkpoint?")
            if tuple(state[s].shape) != tuple(own[d].shape):
                raise ConfigError(
                    f"cannot copy net A's layer {s} {tuple(state[s].shape)} into "
                    f"{model.name}'s layer {d} {tuple(own[d].shape)}: widths or classes differ"
                )
            updates[d] = state[s]
    with torch.no_grad():
        for d, value in updates.items():
            own[d].copy_(value)
    return pairs


def build_meta(name: str, **kwargs: Any) -> VGG:
    """Build on the meta device: shapes only, no memory, for counting and planning."""
    with torch.device("meta"):
        return build(name, init="none", **kwargs)
