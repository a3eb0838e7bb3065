"""The test scales Q of Sec. 3.2 and 4.1-4.2, as one rule for every user.

The command line, the pipeline, the report, the paper's tables
(:func:`vgg_repro.paper.lookup`) and the docs all take their Q from
:func:`test_scales`; :func:`resolve_scales` applies it to a network, or checks the
scales a user gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vgg_repro.errors import ConfigError

__all__ = ["PAPER_CROP", "SCALE_STEP", "resolve_scales", "test_scales"]

PAPER_CROP = 224  # Sec. 2.1: 224x224 training crops
SCALE_STEP = 32  # Sec. 4.2: fixed-S nets are tested at Q = {S-32, S, S+32}


def test_scales(train_scale: Sequence[int], kind: str, crop_size: int = PAPER_CROP) -> list[int]:
    """The paper's test scales Q for a training scale ``(S_min, S_max)``.

    - Fixed S (``S_min == S_max``): ``single`` is ``[S]`` (Sec. 4.1), ``multi`` is
      ``[S - d, S, S + d]`` with ``d = round(32 * crop_size / 224)`` (Sec. 4.2: the
      paper's 32, scaled with the crop so that a miniature net's offset is the same
      fraction of its crop; scaling with S instead would give S=384 an offset of 48,
      unlike the paper).
    - Jittered S: ``single`` is the middle ``[(S_min + S_max) // 2]``, ``multi`` is
      ``[S_min, middle, S_max]`` (384 and {256, 384, 512} in the paper).

    >>> test_scales((256, 256), "multi"), test_scales((256, 512), "single")
    ([224, 256, 288], [384])
    >>> test_scales((384, 384), "multi"), test_scales((37, 73), "multi", crop_size=32)
    ([352, 384, 416], [37, 55, 73])
    >>> test_scales((37, 37), "multi", crop_size=32)
    [32, 37, 42]
    """
    lo, hi = (int(s) for s in train_scale)
    mid = (lo + hi) // 2
    if kind == "single":
        return [lo] if lo == hi else [mid]
    if kind == "multi":
        step = round(SCALE_STEP * crop_size / PAPER_CROP)
        return [lo - step, lo, lo + step] if lo == hi else [lo, mid, hi]
    raise ConfigError(f"test scale preset must be 'single' or 'multi'; got {kind!r}")


def resolve_scales(spec: str | Sequence[int], net: Any) -> list[int]:
    """Test scales Q for a net: a preset (``"single"``, ``"multi"``) or explicit values.

    Args:
        spec: ``"single"`` or ``"multi"`` (:func:`test_scales` of the net's training
            scale), or the values, as a list or a string such as ``"256,384,512"``.
        net: an :class:`~vgg_repro.evaluation.networks.EvalNet` (its ``train_scale``,
            ``model.crop_size`` and ``source``).

    Raises:
        ConfigError: a Q below the crop size, a malformed list, or a preset for a net
            whose training scale is unknown.
    """
    crop = net.model.crop_size
    if isinstance(spec, str) and spec in ("single", "multi"):
        nominal = getattr(net, "nominal_scale", None)
        if net.train_scale is None and nominal is not None:  # torchvision's: S = 256
            return test_scales((nominal, nominal), spec, crop)
        if net.train_scale is None:
            raise ConfigError(
                f"{net.source} does not record its training scale S (scale_min/scale_max), "
                f"so the '{spec}' preset is undefined; give the test scales, e.g. --scales 256,384"
            )
        scales = test_scales(net.train_scale, spec, crop)
    else:
        try:
            scales = [int(q) for q in (spec.split(",") if isinstance(spec, str) else spec)]
        except ValueError:
            raise ConfigError(
                f"test scales must be 'single', 'multi' or integers like 256,384,512; got {spec!r}"
            ) from None
    if not scales:
        raise ConfigError("no test scale given")
    small = [q for q in scales if q < crop]
    if small:
        raise ConfigError(
            f"test scale Q={small[0]} is smaller than the training crop size {crop} of "
            f"{net.source}: dense and multi-crop evaluation need Q >= {crop}"
        )
    return sorted(set(scales))
